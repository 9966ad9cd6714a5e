-- The README demo: a table of seeded, clustered 128-dim vectors, a qhnsw index, a
-- nearest-neighbour query, the index's quantization stats, and the same rows in an
-- sq8vector column.
\set ON_ERROR_STOP on
DROP TABLE IF EXISTS items, items_sq8;
DROP EXTENSION IF EXISTS vectorize_quant CASCADE;
CREATE EXTENSION vectorize_quant;

CREATE TABLE items (id bigserial PRIMARY KEY, embedding qvector(128));
-- Embedding-like data: 40 topic centres, each row a centre plus noise (seeded).
SELECT setseed(0.5);
CREATE TEMP TABLE centres AS
    SELECT c, array_agg(random()::real - 0.5 ORDER BY d) AS v
    FROM generate_series(1, 40) c, generate_series(1, 128) d GROUP BY c;
INSERT INTO items (embedding)
SELECT array_agg(centres.v[d] + (random()::real - 0.5) * 0.25 ORDER BY d)::qvector
FROM generate_series(1, 20000) g JOIN centres ON centres.c = 1 + g % 40, generate_series(1, 128) d
GROUP BY g ORDER BY g;

CREATE INDEX items_embedding_idx ON items USING qhnsw (embedding qvector_l2_ops)
    WITH (quantizer = 'sq8', m = 16, ef_construction = 64);

SET qhnsw.ef_search = 64;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM items WHERE id = 1) LIMIT 5;
SELECT id, round((embedding <-> (SELECT embedding FROM items WHERE id = 1))::numeric, 4) AS distance
FROM items ORDER BY embedding <-> (SELECT embedding FROM items WHERE id = 1) LIMIT 5;

\x on
SELECT method, dimensions, vectors, pg_size_pretty(index_bytes) AS index_size,
       pg_size_pretty(float4_bytes) AS float4_size, round(compression_ratio::numeric, 2) AS compression_ratio,
       round(estimated_quality_loss::numeric, 4) AS estimated_quality_loss,
       round(recall_at_10::numeric, 3) AS recall_at_10, round(mean_latency_ms::numeric, 3) AS mean_latency_ms,
       round(qps::numeric) AS qps, chosen_because
FROM quantization_stats('items_embedding_idx', sample_queries => 50);
SELECT * FROM qhnsw_stat_indexes;

-- The same rows stored as sq8vector (1 byte per dimension plus offset and scale): a
-- smaller table, the same operators, and its own qhnsw operator class.
\x off
CREATE TABLE items_sq8 AS SELECT id, embedding::sq8vector(128) AS embedding FROM items;
SELECT pg_size_pretty(pg_table_size('items')) AS qvector_table,
       pg_size_pretty(pg_table_size('items_sq8')) AS sq8vector_table;
CREATE INDEX items_sq8_embedding_idx ON items_sq8 USING qhnsw (embedding sq8vector_l2_ops);
SELECT id, round((embedding <-> (SELECT embedding FROM items_sq8 WHERE id = 1))::numeric, 4) AS distance
FROM items_sq8 ORDER BY embedding <-> (SELECT embedding FROM items_sq8 WHERE id = 1) LIMIT 5;
