"""The PRC working-day calendar as data (SPEC M-3): publications, the working calendar
every deadline is computed with, and recomputing stored deadlines on publication."""
