"""The fleet dashboard under /dashboard: server-rendered pages and the admin's forms.

routes.py       the read-only pages and the static files
admin.py        the forms: log in and out, pin, pause, resume
credentials.py  the enrolments page, approve and revoke
rollouts.py     staged rollouts: the bin page's waves, the fleet's badges, the
                promote, halt, resume and abort forms, and the policy form
views.py        what each page shows, read through db/fleet.py and db/listings.py
view_types.py   the TypedDicts views.py and rollouts.py hand to the templates
render.py       the visitor (session, CSRF, rights) and Jinja2 rendering of templates/
session.py      the signed session cookie and the CSRF token
"""
