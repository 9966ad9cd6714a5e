-- The quantization SQL API: stats, optimisation, retraining, live counters, views.

CREATE FUNCTION quantization_stats(index regclass, sample_queries integer DEFAULT 0)
    RETURNS TABLE (
        method text, parameters text, bits integer, code_bytes integer, dimensions integer,
        metric text, vectors bigint, index_bytes bigint, float4_bytes bigint,
        compression_ratio double precision, memory_usage_mb double precision,
        estimated_quality_loss double precision, reconstruction_error double precision,
        chosen_because text, recall_at_10 double precision, map_at_10 double precision,
        mean_latency_ms double precision, p99_latency_ms double precision, qps double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION quantization_stats(regclass, integer) IS
    'Size, compression and quality of a qhnsw index; with sample_queries > 0 also recall@10, MAP@10 and latency measured against exact search';

CREATE FUNCTION quantization_optimize(index regclass, quality_threshold double precision DEFAULT 0.95,
        apply boolean DEFAULT false)
    RETURNS TABLE (method text, parameters text, bits_per_dimension double precision,
        recall double precision, bytes_per_vector integer, chosen boolean)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION quantization_optimize(regclass, double precision, boolean) IS
    'Evaluates every quantizer on a sample (recall@10 with exact re-ranking) and picks the smallest meeting the threshold; apply => true rebuilds the index with it';

CREATE FUNCTION qhnsw_quantize(index regclass)
    RETURNS TABLE (method text, vectors bigint, reconstruction_error_before double precision,
        reconstruction_error_after double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION qhnsw_quantize(regclass) IS
    'Retrains the quantizer of a qhnsw index on the current data and re-encodes it (REINDEX INDEX, transactional)';

CREATE FUNCTION qhnsw_index_meta(index regclass)
    RETURNS TABLE (method text, parameters text, bits integer, code_bytes integer, dimensions integer,
        metric text, vectors bigint, rerank text, m integer, ef_construction integer, trained boolean)
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION qhnsw_index_meta(regclass) IS 'What the meta page of a qhnsw index records';

CREATE FUNCTION qhnsw_stat_counters()
    RETURNS TABLE (indexrelid oid, scans bigint, rows_returned bigint, distance_computations bigint,
        reranked_candidates bigint, total_scan_time_ms double precision, shared boolean)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION qhnsw_stat_shared() RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION qhnsw_stat_reset_time() RETURNS timestamptz
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION qhnsw_stat_reset(index regclass DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION qhnsw_stat_reset(regclass) IS
    'Zeroes the scan counters of one qhnsw index, or of every qhnsw index of the database (NULL)';
-- Like pg_stat_reset(): superusers only unless granted.
REVOKE EXECUTE ON FUNCTION qhnsw_stat_reset(regclass) FROM PUBLIC;

-- Every qhnsw index the current user may read, with its size and quantizer.
CREATE VIEW qhnsw_indexes AS
SELECT n.nspname AS schemaname,
       t.relname AS tablename,
       pg_get_indexdef(c.oid, 1, true) AS columnname,
       c.relname AS indexname,
       c.oid AS indexrelid,
       m.method,
       m.parameters,
       m.bits,
       m.dimensions,
       m.metric,
       m.vectors,
       pg_relation_size(c.oid) AS index_bytes,
       pg_size_pretty(pg_relation_size(c.oid)) AS index_size,
       CASE WHEN pg_relation_size(c.oid) > 0
            THEN (m.vectors * m.dimensions * 4)::double precision / pg_relation_size(c.oid) END
           AS compression_ratio,
       c.reloptions AS options
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam AND am.amname = 'qhnsw'
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
-- The CASE keeps the STRICT function from ever seeing an index the user may not read.
CROSS JOIN LATERAL qhnsw_index_meta(CASE WHEN has_table_privilege(t.oid, 'SELECT') THEN c.oid END) m
WHERE has_table_privilege(t.oid, 'SELECT');

-- Live scan counters of every qhnsw index (like pg_stat_user_indexes).
CREATE VIEW qhnsw_stat_indexes AS
SELECT c.oid AS indexrelid,
       n.nspname AS schemaname,
       t.relname AS tablename,
       c.relname AS indexname,
       coalesce(s.scans, 0) AS scans,
       coalesce(s.rows_returned, 0) AS rows_returned,
       coalesce(s.distance_computations, 0) AS distance_computations,
       coalesce(s.reranked_candidates, 0) AS reranked_candidates,
       coalesce(s.total_scan_time_ms, 0) AS total_scan_time_ms,
       CASE WHEN coalesce(s.scans, 0) > 0 THEN s.total_scan_time_ms / s.scans END AS mean_scan_time_ms,
       qhnsw_stat_shared() AS shared,
       qhnsw_stat_reset_time() AS stats_reset
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam AND am.amname = 'qhnsw'
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN qhnsw_stat_counters() s ON s.indexrelid = c.oid;

-- Readable by everyone, like pg_stat_user_indexes (qhnsw_indexes shows only readable tables).
GRANT SELECT ON qhnsw_indexes, qhnsw_stat_indexes TO PUBLIC;
