-- Citus: quantization_stats of a qhnsw index over every shard of a distributed table.
--
-- Citus is optional: nothing here references it at creation time. The function looks
-- Citus up when called (dynamic SQL on pg_dist_shard, run_command_on_shards) and refuses
-- with 0A000 when it is absent, 42809 when the table is not a distributed table.
-- SECURITY INVOKER: the caller needs SELECT on the table here (42501 otherwise, also
-- when row-level security applies to them), and each shard's quantization_stats runs
-- on its worker as the same user, with the same checks, over Citus's own connections.
CREATE FUNCTION qhnsw_distributed_stats(index regclass, sample_queries integer DEFAULT 0)
    RETURNS TABLE (shardid bigint, nodename text, nodeport integer, method text, parameters text,
        vectors bigint, index_bytes bigint, float4_bytes bigint,
        compression_ratio double precision, estimated_quality_loss double precision,
        recall_at_10 double precision, mean_latency_ms double precision)
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    tbl regclass;
    am_name name;
    idx_name name;
    ext_schema name;
    cmd text;
    r record;
    s json;
    tot_vectors bigint := 0;
    tot_index bigint := 0;
    tot_float4 bigint := 0;
    loss_w double precision := 0;
    recall_w double precision := 0;
    latency_sum double precision := 0;
    shards integer := 0;
BEGIN
    SELECT i.indrelid::regclass, a.amname, c.relname
      INTO tbl, am_name, idx_name
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
     WHERE i.indexrelid = index;
    IF tbl IS NULL THEN
        RAISE EXCEPTION '"%" is not an index', index USING ERRCODE = 'wrong_object_type';
    END IF;
    IF am_name <> 'qhnsw' THEN
        RAISE EXCEPTION 'index "%" is not a qhnsw index', index USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT has_table_privilege(tbl, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF row_security_active(tbl) THEN
        RAISE EXCEPTION 'permission denied for table %: row-level security applies to the current user and this function reads every row', tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'qhnsw_distributed_stats needs the citus extension'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On a single node use quantization_stats(index).';
    END IF;
    EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_shard WHERE logicalrelid = $1'
        INTO shards USING tbl;
    IF shards = 0 THEN
        RAISE EXCEPTION 'table % is not a distributed table', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Use quantization_stats(index) for a local table.';
    END IF;
    SELECT e.extnamespace::regnamespace::name INTO ext_schema
      FROM pg_extension e WHERE e.extname = 'vectorize_quant';
    -- run_command_on_shards passes the command through format(command, shard name):
    -- %1$L is the shard's name as a literal; a % of our own must be doubled. On the
    -- shard the index is named <index>_<shardid>, like its table <table>_<shardid>.
    cmd := format(
        'SELECT pg_catalog.row_to_json(q)::text FROM pg_catalog.pg_class t'
        ' JOIN pg_catalog.pg_index i ON i.indrelid = t.oid'
        ' JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid'
        ' CROSS JOIN LATERAL %s.quantization_stats(c.oid, %s) q'
        ' WHERE t.oid = %%1$L::pg_catalog.regclass'
        ' AND c.relname = %s OPERATOR(pg_catalog.||) pg_catalog.substring(t.relname, ''_[0-9]+$'')',
        quote_ident(ext_schema), sample_queries, replace(quote_literal(idx_name), '%', '%%'));
    shards := 0;
    FOR r IN EXECUTE
        'SELECT s.shardid, s.success, s.result, p.nodename::text AS nodename, p.nodeport
           FROM pg_catalog.run_command_on_shards($1, $2) s
           LEFT JOIN LATERAL (SELECT n.nodename, n.nodeport
                                FROM pg_catalog.pg_dist_placement pl
                                JOIN pg_catalog.pg_dist_node n ON n.groupid = pl.groupid
                               WHERE pl.shardid = s.shardid
                               ORDER BY n.nodeid LIMIT 1) p ON true
          ORDER BY s.shardid'
        USING tbl, cmd
    LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION 'quantization_stats failed on shard % (%:%): %',
                r.shardid, r.nodename, r.nodeport, r.result
                USING ERRCODE = 'external_routine_exception';
        END IF;
        IF coalesce(r.result, '') = '' THEN
            RAISE EXCEPTION 'shard % of table % has no index named %_%', r.shardid, tbl, idx_name, r.shardid
                USING ERRCODE = 'undefined_object',
                      HINT = 'Citus shortens shard index names beyond 63 bytes: use a shorter index name.';
        END IF;
        s := r.result::json;
        shardid := r.shardid;
        nodename := r.nodename;
        nodeport := r.nodeport;
        method := s->>'method';
        parameters := s->>'parameters';
        vectors := (s->>'vectors')::bigint;
        index_bytes := (s->>'index_bytes')::bigint;
        float4_bytes := (s->>'float4_bytes')::bigint;
        compression_ratio := (s->>'compression_ratio')::double precision;
        estimated_quality_loss := (s->>'estimated_quality_loss')::double precision;
        recall_at_10 := (s->>'recall_at_10')::double precision;
        mean_latency_ms := (s->>'mean_latency_ms')::double precision;
        RETURN NEXT;
        shards := shards + 1;
        tot_vectors := tot_vectors + coalesce(vectors, 0);
        tot_index := tot_index + coalesce(index_bytes, 0);
        tot_float4 := tot_float4 + coalesce(float4_bytes, 0);
        loss_w := loss_w + coalesce(estimated_quality_loss, 0) * coalesce(vectors, 0);
        recall_w := recall_w + coalesce(recall_at_10, 0) * coalesce(vectors, 0);
        latency_sum := latency_sum + coalesce(mean_latency_ms, 0);
    END LOOP;
    -- The whole index: sizes summed, qualities weighted by each shard's vectors,
    -- latency the mean of the shards' (a query searches every shard in parallel).
    shardid := NULL;
    nodename := NULL;
    nodeport := NULL;
    vectors := tot_vectors;
    index_bytes := tot_index;
    float4_bytes := tot_float4;
    compression_ratio := CASE WHEN tot_index > 0 THEN tot_float4::double precision / tot_index END;
    estimated_quality_loss := CASE WHEN tot_vectors > 0 THEN loss_w / tot_vectors END;
    recall_at_10 := CASE WHEN sample_queries > 0 AND tot_vectors > 0 THEN recall_w / tot_vectors END;
    mean_latency_ms := CASE WHEN sample_queries > 0 AND shards > 0 THEN latency_sum / shards END;
    RETURN NEXT;
END
$body$;
COMMENT ON FUNCTION qhnsw_distributed_stats(regclass, integer) IS
    'quantization_stats of a qhnsw index on every shard of a Citus distributed table (one row per shard), then a total row (shardid NULL): sizes summed, quality weighted by vectors';
