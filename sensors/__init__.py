"""Data readers, simulators and (later) publishers: where vibration enters edgesnn."""
