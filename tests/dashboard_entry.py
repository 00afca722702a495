"""AppTest's entry point: runs streamlit_app.py from a folder without a pages/ directory.

Beside a pages/ folder, AppTest puts Streamlit in its legacy multipage mode on every run and
reruns a page without the frame; a real server leaves that mode after its first
`st.navigation` call. Running the app from here tests what a browser gets.
"""

import runpy
from pathlib import Path

runpy.run_path(
    str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), run_name="__main__"
)
