"""gunicorn's settings that hold for every deployment: `gunicorn -c config/gunicorn.conf.py`
(the image's command and `make run`). Bind address, workers and threads stay on the
command line, where the environment sets them.

The access log keeps personal data out: a line names the path without its query string
(`%(U)s`, never the request line `%(r)s` or the query `%(q)s`), because query strings
carry e-mails (`/customers/?email=`) and the admin's searches (`?q=`); and no Referer
(`%(f)s`), which carries the previous page's query string. The request id ties a line to
the service's JSON logs.
"""

accesslog = "-"
errorlog = "-"
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'
)
