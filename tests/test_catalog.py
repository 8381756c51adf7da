"""The zh-CN catalog translates every message the UI can show (an English word on a Chinese page is a defect)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]


def test_every_message_has_a_chinese_translation(tmp_path):
    template = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "--quiet", "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "N_", "-o", str(template), "."], cwd=ROOT, check=True)
    with template.open("rb") as pot, (ROOT / "tracker/translations/zh_Hans_CN/LC_MESSAGES/messages.po").open("rb") as po:
        messages, catalog = read_po(pot), read_po(po)
    assert len(messages) > 300
    missing = [m.id for m in messages if m.id and not (catalog.get(m.id) and catalog.get(m.id).string)]
    assert missing == []
