"""Correctness of a run: the DuckDB tables hold exactly the emulator's rows (a fast wrong answer doesn't count)."""

from __future__ import annotations

from pathlib import Path


def table_counts(duckdb_file: Path, schema: str, tables: list[str]) -> dict[str, tuple[int, int]]:
    """(rows, distinct ids) per table; (-1, -1) when the table is missing."""
    import duckdb

    counts: dict[str, tuple[int, int]] = {}
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        for table in tables:
            try:
                rows, ids = con.execute(f"SELECT count(*), count(DISTINCT id) FROM {schema}.{table}").fetchone()
                counts[table] = (int(rows), int(ids))
            except duckdb.Error:
                counts[table] = (-1, -1)
    finally:
        con.close()
    return counts


def verify(duckdb_file: Path, schema: str, expected: dict[str, int], unique_ids: bool = True) -> str:
    """'' when every table has the expected row count (and unique ids), else what is wrong."""
    if not duckdb_file.exists():
        return f"no DuckDB file at {duckdb_file}"
    problems = []
    for table, (rows, ids) in table_counts(duckdb_file, schema, list(expected)).items():
        if rows != expected[table]:
            problems.append(f"{schema}.{table}: {rows} rows, expected {expected[table]}")
        elif unique_ids and ids != rows:
            problems.append(f"{schema}.{table}: {rows} rows but {ids} distinct ids")
    return "; ".join(problems)


def rows_updated_at(duckdb_file: Path, schema: str, tables: list[str], clock: str) -> dict[str, int]:
    """Rows per table whose ``updated_at`` equals ``clock`` (an ISO UTC timestamp): the changes that landed."""
    import duckdb

    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        return {
            table: int(
                con.execute(f"SELECT count(*) FROM {schema}.{table} WHERE updated_at = ?::TIMESTAMPTZ", [clock]).fetchone()[0]
            )
            for table in tables
        }
    finally:
        con.close()


def non_null_counts(duckdb_file: Path, schema: str, table: str, fields: tuple[str, ...]) -> dict[str, int]:
    """Per field, the rows holding a value in the field's column or any of its variant columns
    (``<field>__v_<type>``, where dlt puts values that do not fit the column's type)."""
    import duckdb

    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        columns = [d[0] for d in con.execute(f"SELECT * FROM {schema}.{table} LIMIT 0").description]
        counts: dict[str, int] = {}
        for field in fields:
            found = [c for c in columns if c == field or c.startswith(f"{field}__v_")]
            if not found:
                counts[field] = 0
                continue
            held = " OR ".join(f'"{c}" IS NOT NULL' for c in found)
            counts[field] = int(con.execute(f"SELECT count(*) FROM {schema}.{table} WHERE {held}").fetchone()[0])
        return counts
    finally:
        con.close()
