"""Assess health: turn per-window diagnoses into a sensor's smoothed state, with hysteresis.

One noisy window must not flip a machine to alarm: the state changes only when a new label has
won the majority of the last `window` diagnoses `hold` times in a row.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass
class HealthState:
    window: int = 5
    hold: int = 3
    label: str | None = None  # the published state; None until the first decision
    _recent: deque = field(default_factory=deque, repr=False)
    _candidate: str | None = None
    _streak: int = 0

    def update(self, label: str) -> bool:
        """Add one window's label; True when the published state changed."""
        self._recent.append(label)
        if len(self._recent) > self.window:
            self._recent.popleft()
        leader, votes = Counter(self._recent).most_common(1)[0]
        if votes * 2 <= len(self._recent) or leader == self.label:
            self._candidate, self._streak = None, 0
            return False
        self._streak = self._streak + 1 if leader == self._candidate else 1
        self._candidate = leader
        if self._streak >= self.hold:
            self.label, self._candidate, self._streak = leader, None, 0
            return True
        return False
