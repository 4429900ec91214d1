"""The Streamlit web app (``lookalike app``): Search, Cluster Analysis, Duplicates, Classification.

Run with ``lookalike app --library L``; :mod:`lookalike.app.main` is the script Streamlit runs.
Nothing here is imported by ``import lookalike``: streamlit and plotly load only in the app.
"""
