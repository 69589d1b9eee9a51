"""Pure decisions: plain values and `now` in, a decision with a reason out. No I/O here."""
