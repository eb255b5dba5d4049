"""`python bench/_count_queries.py OUTFILE ARGS…` runs `manage.py ARGS…` and writes to OUTFILE how
many SQL statements it sent, from every thread: a counter is added to each database connection as
Django opens it (the `connection_created` signal), before any statement is sent."""
import atexit
import itertools
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def main():
    outfile, args = sys.argv[1], sys.argv[2:]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oauthmail.settings")
    import django
    from django.db.backends.signals import connection_created

    counter = itertools.count()  # next() is atomic under the GIL

    def count(execute, sql, params, many, context):
        next(counter)
        return execute(sql, params, many, context)

    def add_counter(sender, connection, **kwargs):
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(add_counter, weak=False)
    atexit.register(lambda: Path(outfile).write_text(str(next(counter))))
    django.setup()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *args])


if __name__ == "__main__":
    main()
