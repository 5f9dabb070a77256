"""What a data set holds, said in one line: how many samples, how many labels, where the labels
come from, and what was skipped. ``gantk check`` and the start of ``gantk train`` print it."""

from __future__ import annotations

from dataclasses import dataclass, field


def _names(names: list[str], k: int = 5) -> str:
    shown = ", ".join(names[:k])
    return shown + (f", ... ({len(names) - k} more)" if len(names) > k else "")


@dataclass
class Census:
    count: int | None  # samples in one epoch (None: known only once loaded)
    num_classes: int | None  # None: unlabelled
    source: str = ""  # "folder /data/cats", "zip archive /data/ffhq.zip", ...
    mode: str = ""  # how the labels were found (or why there are none)
    classes: list[str] = field(default_factory=list)  # class names, by label index
    distinct: int | None = None  # labels actually used, when fewer than num_classes
    skipped: list[str] = field(default_factory=list)  # entries not read (not regular files)
    ignored: int = 0  # images outside the class folders

    def line(self, kind: str = "images") -> str:
        count = f"{self.count:,} {kind}" if self.count is not None else \
            f"{kind}: counted when training starts"
        parts = [count + (f" in {self.source}" if self.source else "")]
        if self.num_classes is None:
            parts.append("unlabelled" + (f" ({self.mode})" if self.mode else ""))
        else:
            text = f"{self.num_classes} labels"
            if self.classes:
                shown = [f"{i}={c}" for i, c in enumerate(self.classes)]
                text += f" ({_names(shown)})"
            elif self.distinct is not None and self.distinct != self.num_classes:
                text += f" (0-{self.num_classes - 1}, {self.distinct} of them used)"
            parts.append(text + (f" from {self.mode}" if self.mode else ""))
        if self.ignored:
            parts.append(f"{self.ignored:,} image files outside the class folders ignored")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} entries that are not regular files "
                         f"({_names(self.skipped, 3)})")
        return "; ".join(parts)
