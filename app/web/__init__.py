"""The Streamlit chat page (``streamlit run app/web/chat_page.py``): the page flow, its sidebar, answer rendering
and labels, and what it loads once per process."""
