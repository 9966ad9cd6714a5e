-- Test fixture for vq: seeded clustered vectors in two tables, a non-superuser role that
-- owns one of them (so it may re-quantize it) and may only read the other.
\set ON_ERROR_STOP on
CREATE EXTENSION vectorize_quant;
CREATE ROLE vq_app LOGIN;
SELECT setseed(0.25);
CREATE TEMP TABLE centres AS
    SELECT c, array_agg(random()::real - 0.5 ORDER BY d) AS v
    FROM generate_series(1, 16) c, generate_series(1, 32) d GROUP BY c;
CREATE TABLE items (id bigserial PRIMARY KEY, embedding qvector(32));
INSERT INTO items (embedding)
SELECT array_agg(centres.v[d] + (random()::real - 0.5) * 0.3 ORDER BY d)::qvector
FROM generate_series(1, 3000) g JOIN centres ON centres.c = 1 + g % 16, generate_series(1, 32) d
GROUP BY g ORDER BY g;
CREATE INDEX items_embedding_idx ON items USING qhnsw (embedding qvector_l2_ops)
    WITH (quantizer = 'sq8', m = 16, ef_construction = 64);
ALTER TABLE items OWNER TO vq_app;
-- No primary key (search answers ctids), cosine metric, owned by postgres: vq_app may read only.
CREATE TABLE docs (body text, emb qvector(16));
INSERT INTO docs
SELECT 'doc ' || g, array_agg(centres.v[d] + (random()::real - 0.5) * 0.3 ORDER BY d)::qvector
FROM generate_series(1, 600) g JOIN centres ON centres.c = 1 + g % 16, generate_series(1, 16) d
GROUP BY g ORDER BY g;
CREATE INDEX docs_emb_idx ON docs USING qhnsw (emb qvector_cosine_ops) WITH (quantizer = 'sq4');
GRANT SELECT ON docs TO vq_app;
