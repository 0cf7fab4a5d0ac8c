# The team's MLflow tracking server: MLflow, the PostgreSQL driver and the S3 client, at the versions this
# project's uv.lock holds (the `team` extra), so the server and every client speak the same MLflow.
# Built by `docker compose build` from the project root; mlflow.Dockerfile.dockerignore sends only the lock.
FROM python:{{ {'3.11': '3.11.14', '3.12': '3.12.12'}[cookiecutter.python_version] }}-slim-bookworm AS lock
# uv only reads the lock here: any uv new enough for pyproject.toml's [tool.uv] required-version will do.
RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock /project/
RUN cd /project && uv export --frozen --extra team --no-emit-project --no-hashes -o /constraints.txt

FROM python:{{ {'3.11': '3.11.14', '3.12': '3.12.12'}[cookiecutter.python_version] }}-slim-bookworm
COPY --from=lock /constraints.txt /tmp/constraints.txt
# pip compiles bytecode as it installs, so the server does not pay for it at every start.
RUN pip install --no-cache-dir -c /tmp/constraints.txt mlflow "psycopg[binary]" boto3 \
    && useradd --create-home --uid 10001 mlflow
USER mlflow
WORKDIR /home/mlflow
EXPOSE 5000
