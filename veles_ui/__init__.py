"""The Reflex app: public pages, the client portal and the admin pages, all in Python."""
