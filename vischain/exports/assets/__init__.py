"""Files an export copies verbatim into its folder, to run inside another tool (VLMEvalKit, lmms-eval).

They import that tool, never vischain: the export folder must work where only the tool is installed.
"""
