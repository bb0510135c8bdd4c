"""The rules of mail hosting: pure Python, no web framework, no SQL, no subprocess."""
