"""Create an MLflow account with the admin's credentials, once: compose's ``mlflow-users`` job runs it so the
pipeline logs as its own user, not as the admin. Idempotent: an account that already exists is left as it is.

    MLFLOW_TRACKING_URI=http://mlflow:5000 MLFLOW_ADMIN_USERNAME=admin MLFLOW_ADMIN_PASSWORD=... \
    NEW_USERNAME=pipeline NEW_PASSWORD=... python create_user.py
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    admin = f"{os.environ.get('MLFLOW_ADMIN_USERNAME', 'admin')}:{os.environ['MLFLOW_ADMIN_PASSWORD']}"
    username = os.environ["NEW_USERNAME"]
    request = urllib.request.Request(
        f"{os.environ['MLFLOW_TRACKING_URI'].rstrip('/')}/api/2.0/mlflow/users/create",
        data=json.dumps({"username": username, "password": os.environ["NEW_PASSWORD"]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {base64.b64encode(admin.encode()).decode()}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30):
            print(f"created MLflow user {username!r}")
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        if "RESOURCE_ALREADY_EXISTS" not in body:
            print(f"creating MLflow user {username!r} failed: HTTP {error.code} {body}", file=sys.stderr)
            return 1
        print(f"MLflow user {username!r} exists already")
    return 0


if __name__ == "__main__":
    sys.exit(main())
