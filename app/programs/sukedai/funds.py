"""The funds of 苏科贷: one province fund, and a city/county fund per cooperating region
(SPEC §2, SKD-S1)."""

PROVINCE_FUND = "SKD_PROV"  # 省级风险补偿资金
