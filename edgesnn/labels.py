"""Class names of the CWRU tasks (CONTRACTS section 1).

A class name starts with its fault type, so any consumer can reduce a label to its type.
"""

FAULT_TYPES = ("normal", "ball", "inner_race", "outer_race")

CWRU10 = (
    "normal",
    "ball_007", "ball_014", "ball_021",
    "inner_race_007", "inner_race_014", "inner_race_021",
    "outer_race_007", "outer_race_014", "outer_race_021",
)

TASKS = {"cwru10": CWRU10, "fault_type": FAULT_TYPES}


def fault_type(label: str) -> str:
    for kind in FAULT_TYPES:
        if label == kind or label.startswith(kind + "_"):
            return kind
    raise ValueError(f"label {label!r} does not start with a fault type {FAULT_TYPES}")


def label_for(fault: str, diameter_in: float, task: str = "cwru10") -> str:
    """Class name of a recording with this fault and defect diameter (inches)."""
    if task == "fault_type" or fault == "normal":
        return fault
    return f"{fault}_{round(diameter_in * 1000):03d}"


def task_of(classes) -> str:
    """The task whose classes a model predicts, in that order (a card's `classes`)."""
    for task, names in TASKS.items():
        if list(classes) == list(names):
            return task
    raise ValueError(f"classes {list(classes)} are not those of a known task ({', '.join(TASKS)})")
