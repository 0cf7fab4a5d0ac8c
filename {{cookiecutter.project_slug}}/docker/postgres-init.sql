-- Run once, when the PostgreSQL volume is first created: the database Optuna studies share (OPTUNA_STORAGE).
-- Optuna and MLflow each keep an alembic_version table, so each has its own database.
CREATE DATABASE optuna;
