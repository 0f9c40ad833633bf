-- Prometheus remote write, acknowledged once durable (services/anomaly/remote_write/inbox.py).
--
-- POST /api/v1/write checks a request (snappy, protobuf, labels: a 400 writes nothing),
-- stores its body here as received and answers 204; a drain task of the service then
-- takes an account's oldest bodies in order (one replica per account at a time, under an
-- advisory lock), routes their samples and ingests them as one batch, deleting the rows
-- in the transaction that stores the points: a crash leaves them here to be drained
-- again, never half stored. Prometheus sends one request per shard at a time and waits
-- for its answer; scoring many requests in one transaction amortises the per-series work
-- (each request holds a sample or two of every series).
-- * samples: the request's sample count, for the backlog bound (503 past it).
-- Not tracked by Hasura.
CREATE TABLE public.np_anomaly_write_inbox (
    source_account_id text        NOT NULL DEFAULT 'primary',
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    received_at       timestamptz NOT NULL DEFAULT now(),
    samples           integer     NOT NULL CHECK (samples >= 0),
    body              bytea       NOT NULL,
    PRIMARY KEY (source_account_id, id)
);
SELECT public.nsentry_enable_tenant_rls('public.np_anomaly_write_inbox');
GRANT SELECT, INSERT, DELETE ON public.np_anomaly_write_inbox TO nsentry_app, nsentry_worker;
COMMENT ON TABLE public.np_anomaly_write_inbox IS
    'nself-anomaly remote write: request bodies accepted and not yet scored (internal)';
