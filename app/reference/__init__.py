"""Reference data: banks, regions, funds, agreements, enterprises, LPR (SPEC §2)."""
