-- The source table of examples/conveyor.cdc.yaml's `customers` stream, with a few rows.
CREATE TABLE IF NOT EXISTS public.customers (
    id int PRIMARY KEY,
    account bigint NOT NULL,
    balance numeric(12,2),
    name text NOT NULL,
    code varchar(8),
    active boolean NOT NULL,
    updated_at timestamptz,
    born date,
    attrs jsonb,
    avatar bytea,
    version int NOT NULL
);
INSERT INTO public.customers
SELECT g, g * 1000, g * 1.25, 'customer ' || g, 'C' || g, g % 2 = 0, now(), date '1990-01-01' + g,
       jsonb_build_object('tier', g % 3), decode('00ff', 'hex'), 1
FROM generate_series(1, 100) g
ON CONFLICT (id) DO NOTHING;
