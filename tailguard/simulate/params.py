# fmt: off
# ruff: noqa: E501
"""Numbers derived from real data by ``derive_params.py`` (generated: do not edit by hand).

Regenerate: ``.venv/bin/python -m tailguard.simulate.derive_params > tailguard/simulate/params.py``.
"""

# Per-customer spend shape: alibaba/ServeGen data/ @ f891d1189eb32b3868dfc443800c4150548c282a
# (per_customer/servegen_per_client_summary.csv), 331 clients of the language and reasoning
# pools, log(total tokens) minus the pool's median. Body quantiles at p = 0, 0.02, ..., 0.9;
# above it a Pareto tail whose exponent is the Hill estimate on the top 10%.
ACTIVITY_BODY_TOP = 0.9
ACTIVITY_LOGZ = [-6.0706, -4.5134, -4.0758, -3.7609, -3.4671, -3.36, -3.2059, -3.0867, -2.8859, -2.7635, -2.6, -2.446, -2.1968, -2.0488, -1.9457, -1.7231, -1.5486, -1.3772, -1.2301, -1.111, -1.0185, -0.7952, -0.5579, -0.3422, -0.1723, 0.0, 0.1439, 0.2511, 0.2989, 0.4178, 0.6297, 0.7162, 0.8956, 0.9603, 1.0469, 1.2561, 1.3781, 1.5641, 1.6597, 1.7191, 1.8314, 1.937, 2.0404, 2.2424, 2.4511, 2.7776]
ACTIVITY_TAIL_ALPHA = 1.1369

# Token sizes: quantiles at p = 0, 0.025, ..., 1 (41 values).
# Azure/AzurePublicDataset data/ @ b469a113cedca53ddc3bdea71a143dc4b7d8700c
AZURE_CONV_CONTEXT = [2, 120, 181, 200, 207, 235, 372, 379, 387, 393, 396, 400, 403, 407, 414, 428, 703, 922, 984, 1005, 1020, 1034, 1045, 1058, 1071, 1083, 1097, 1112, 1130, 1153, 1189, 1277, 1315, 1434, 1876, 2309, 2734, 4075, 4083, 4092, 14050]
AZURE_CONV_GENERATED = [7, 28, 41, 48, 54, 60, 67, 72, 77, 82, 85, 88, 91, 93, 96, 99, 103, 108, 113, 120, 129, 139, 151, 162, 177, 195, 217, 373, 384, 391, 395, 396, 400, 406, 411, 416, 424, 430, 451, 522, 1000]
AZURE_CODE_CONTEXT = [3, 44, 75, 102, 147, 185, 232, 299, 386, 484, 578, 679, 770, 863, 939, 1016, 1075, 1153, 1261, 1370, 1469, 1585, 1690, 1798, 1909, 2048, 2164, 2305, 2433, 2578, 2744, 2942, 3192, 3538, 3920, 4434, 5188, 6097, 7303, 7435, 7437]
AZURE_CODE_GENERATED = [6, 6, 6, 6, 7, 7, 7, 8, 8, 9, 9, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 16, 16, 18, 19, 20, 22, 24, 26, 29, 33, 39, 46, 55, 69, 90, 145, 1899]
# kvcache-ai/Mooncake FAST25-release/traces/ @ 3b5a594133958449a1feaf1c9e0fc1b553e34a28
MOONCAKE_INPUT = [891, 896, 901, 913, 964, 1090, 1261, 1442, 1662, 1924, 2306, 2746, 3263, 3810, 4251, 4596, 4993, 5378, 5870, 6348, 6909, 7509, 8187, 8847, 9570, 10328, 11238, 12147, 13196, 14249, 15367, 16505, 17869, 19403, 21464, 24393, 27367, 31519, 39550, 58977, 126195]
MOONCAKE_OUTPUT = [1, 3, 10, 17, 24, 32, 46, 72, 100, 127, 156, 189, 213, 235, 256, 275, 291, 308, 322, 336, 350, 363, 375, 388, 399, 410, 423, 435, 447, 459, 472, 487, 504, 522, 543, 566, 597, 639, 698, 835, 2000]
# token-weighted share of prompt tokens in 512-token blocks already seen (cacheable prefix)
MOONCAKE_CACHE_SHARE = 0.3736

# USD per million tokens (provider, input, output, cache read, cache write): a snapshot of
# pydantic/genai-prices (the installed package) at derivation time. Used only to size budgets
# and for the estimated figures in truth.json; ingest prices events itself.
PRICES: dict[str, tuple[str, float, float, float, float]] = {
    'gpt-4o': ('openai', 2.5, 10.0, 1.25, 2.5),
    'gpt-4o-mini': ('openai', 0.15, 0.6, 0.075, 0.15),
    'o3-mini': ('openai', 1.1, 4.4, 0.55, 1.1),
    'claude-3-5-sonnet-20241022': ('anthropic', 3.0, 15.0, 0.3, 3.75),
    'claude-sonnet-4-20250514': ('anthropic', 3.0, 15.0, 0.3, 3.75),
    'claude-3-5-haiku-20241022': ('anthropic', 0.8, 4.0, 0.08, 1.0),
}
