"""The projects function: /projects/ and a project's summary reports."""
