"""A folder of model cards that a running monitor watches for newer models (fleet retraining).

A model is committed to the folder by its card: exporters write the ONNX file first and the
card last. The watcher takes the newest card (by file modification time: copy models in with
their times refreshed, not `cp -p` or `rsync -a`) that is newer than the card of the model in
use and that it has not tried,
loads it through Diagnoser, which verifies the ONNX sha256 against the card, and checks that it
diagnoses the same classes from the same window at the same sample rate as the model in use.
Only then does the monitor swap, between two batches. A card that fails is counted and logged
once, and tried again only if its card or ONNX file changes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from edgesnn.card import FORMAT
from edgesnn.errors import EdgesnnError
from edgesnn.runtime import Diagnoser

log = logging.getLogger("edgesnn.models")


def _stamp(card: Path) -> tuple:
    """What identifies one version of a card and its ONNX file on disk (files may vanish or hold
    anything while we look: a stamp never fails)."""
    def mtime(path: Path) -> int:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return 0

    try:
        onnx = card.parent / str(json.loads(card.read_text()).get("onnx"))
    except Exception:
        onnx = None
    return mtime(card), mtime(onnx) if onnx else 0


class ModelWatcher:
    def __init__(self, folder: Path, current: Diagnoser):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            what = "a file, not a model folder" if self.folder.exists() else "model folder not found"
            raise EdgesnnError(f"{self.folder}: {what}")
        self.current = current
        self.tried: dict[Path, tuple] = {}  # card -> stamp when last tried
        self.swaps = 0
        self.rejected = 0
        self.since = Path(current.card_path).stat().st_mtime_ns  # only newer cards are candidates

    def _candidates(self) -> list[tuple[int, Path]]:
        cards = []
        for path in self.folder.glob("*.json"):
            try:
                mtime = path.stat().st_mtime_ns
                if mtime > self.since and self.tried.get(path) != _stamp(path):
                    cards.append((mtime, path))
            except OSError:
                continue  # removed while we looked
        return sorted(cards, reverse=True)

    def poll(self) -> Diagnoser | None:
        """A verified newer Diagnoser to swap to, or None."""
        for mtime, card in self._candidates():
            self.tried[card] = _stamp(card)
            try:
                content = json.loads(card.read_text())
                if not isinstance(content, dict):
                    raise ValueError("not a JSON object")
            except Exception as exc:  # unreadable or not JSON: a card cut short, say (tried again when it changes)
                self.rejected += 1
                log.warning("model not taken: %s: not a readable model card (%s)", card,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                continue
            if content.get("format") != FORMAT:
                continue  # JSON that is no model card (history.json and the like)
            if content.get("kind") == "anomaly":
                continue  # an anomaly model scores, it does not replace the classifier
            try:
                # as many threads and the same normal margin as the model in use
                new = Diagnoser(card, threads=self.current.threads, normal_margin=self.current.normal_margin)
                # two silent windows through it: a card whose classes do not match its graph fails here
                width = new.logits(np.zeros((2, 1, new.window), np.float32)).shape
                if width != (2, len(new.classes)):
                    raise EdgesnnError(f"{card}: the model gives {width[1]} outputs for {len(new.classes)} classes")
            except Exception as exc:  # whatever a card holds, the monitor goes on with its model
                self.rejected += 1
                log.warning("model not taken: %s", exc if isinstance(exc, EdgesnnError) else
                            f"{card}: {type(exc).__name__}: {exc}")
                continue
            if new.model_id == self.current.model_id:  # the same model, its card rewritten (metrics added)
                self.since = mtime
                continue
            mismatch = [k for k in ("classes", "window", "sample_rate_hz")
                        if getattr(new, k) != getattr(self.current, k)]
            if mismatch:
                self.rejected += 1
                log.warning("model not taken: %s differs from %s in %s", card, self.current.model_id,
                            ", ".join(mismatch))
                continue
            log.info("model %s -> %s", self.current.model_id, new.model_id)
            self.current, self.since = new, mtime
            self.swaps += 1
            return new
        return None
