"""The raw event store: a monthly-partitioned table, its dedupe keys and rollup deltas.

Written only by usage.ingestion.ingest (COPY + one INSERT … SELECT statement); see that module.
"""

from django.db import migrations

CREATE = """
CREATE TABLE usage_event (
    key uuid NOT NULL,
    source text NOT NULL,
    event_id text NOT NULL,
    account_id bigint NOT NULL,
    meter_id bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    quantity numeric(28, 6) NOT NULL,
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    received_at timestamptz NOT NULL
) PARTITION BY RANGE (occurred_at);
-- Rebuilds scan whole partitions; per-account reads go to rollups. This index serves
-- support look-ups of one account's recent raw events.
CREATE INDEX usage_event_account_time ON usage_event (account_id, occurred_at);

-- One row per stored event, kept exactly as long as the raw event (the retention window
-- on occurred_at). The primary key is the deduplication: a partitioned table cannot hold
-- a unique index without its partition key, and (id, time) would let a retry with
-- another timestamp through.
CREATE TABLE usage_eventkey (
    key uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX usage_eventkey_occurred ON usage_eventkey USING brin (occurred_at);

-- Exact per-batch sums waiting to be folded into usage_dailyrollup.
CREATE TABLE usage_rollupdelta (
    account_id bigint NOT NULL,
    meter_id bigint NOT NULL,
    day date NOT NULL,
    quantity numeric(28, 6) NOT NULL,
    event_count bigint NOT NULL
);

-- NULL instead of an error for text that is not JSON (the CSV import reports the line).
CREATE FUNCTION usage_try_jsonb(value text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

CREATE FUNCTION usage_ensure_partition(month date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    name text := 'usage_event_' || to_char(first_day, 'YYYYMM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN;
    END IF;
    -- Two writers may want the same new month at once.
    PERFORM pg_advisory_xact_lock(hashtext('usage_event_partitions'));
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF usage_event FOR VALUES FROM (%L) TO (%L)',
        name, (first_day::text || ' 00:00:00+00'), ((first_day + interval '1 month')::date::text || ' 00:00:00+00')
    );
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS usage_ensure_partition(date);
DROP FUNCTION IF EXISTS usage_try_jsonb(text);
DROP TABLE IF EXISTS usage_rollupdelta;
DROP TABLE IF EXISTS usage_eventkey;
DROP TABLE IF EXISTS usage_event;
"""


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
