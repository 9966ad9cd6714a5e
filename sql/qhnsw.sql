-- The qhnsw index access method and its operator classes.

CREATE FUNCTION qhnsw_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD qhnsw TYPE INDEX HANDLER qhnsw_handler;
COMMENT ON ACCESS METHOD qhnsw IS 'HNSW over quantized codes with exact re-ranking';

CREATE OPERATOR CLASS qvector_l2_ops FOR TYPE qvector USING qhnsw AS
    OPERATOR 1 <-> (qvector, qvector) FOR ORDER BY float_ops,
    FUNCTION 1 qvector_l2_squared_distance(qvector, qvector);

CREATE OPERATOR CLASS qvector_ip_ops FOR TYPE qvector USING qhnsw AS
    OPERATOR 1 <#> (qvector, qvector) FOR ORDER BY float_ops,
    FUNCTION 1 qvector_negative_inner_product(qvector, qvector);

CREATE OPERATOR CLASS qvector_cosine_ops FOR TYPE qvector USING qhnsw AS
    OPERATOR 1 <=> (qvector, qvector) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(qvector, qvector);

CREATE OPERATOR CLASS qvector_l1_ops FOR TYPE qvector USING qhnsw AS
    OPERATOR 1 <+> (qvector, qvector) FOR ORDER BY float_ops,
    FUNCTION 1 l1_distance(qvector, qvector);

-- Structural checker: one row per problem found (none for a healthy index).
CREATE FUNCTION qhnsw_check_problems(regclass) RETURNS text[]
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
CREATE FUNCTION qhnsw_check(index regclass) RETURNS SETOF text
    LANGUAGE sql STRICT AS $$ SELECT pg_catalog.unnest(@extschema@.qhnsw_check_problems(index)) $$;

-- sq8vector columns: the graph is built over the decoded values, and re-ranking
-- computes the same distances on the codes as the operators.

CREATE OPERATOR CLASS sq8vector_l2_ops FOR TYPE sq8vector USING qhnsw AS
    OPERATOR 1 <-> (sq8vector, sq8vector) FOR ORDER BY float_ops,
    FUNCTION 1 sq8vector_l2_squared_distance(sq8vector, sq8vector);

CREATE OPERATOR CLASS sq8vector_ip_ops FOR TYPE sq8vector USING qhnsw AS
    OPERATOR 1 <#> (sq8vector, sq8vector) FOR ORDER BY float_ops,
    FUNCTION 1 sq8vector_negative_inner_product(sq8vector, sq8vector);

CREATE OPERATOR CLASS sq8vector_cosine_ops FOR TYPE sq8vector USING qhnsw AS
    OPERATOR 1 <=> (sq8vector, sq8vector) FOR ORDER BY float_ops,
    FUNCTION 1 sq8vector_cosine_distance(sq8vector, sq8vector);

-- A distinct name for the L1 support function, so the index can tell the column type
-- from the function name (l1_distance is overloaded for both types).
CREATE FUNCTION sq8vector_l1_distance(sq8vector, sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME', 'sq8vector_l1_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS sq8vector_l1_ops FOR TYPE sq8vector USING qhnsw AS
    OPERATOR 1 <+> (sq8vector, sq8vector) FOR ORDER BY float_ops,
    FUNCTION 1 sq8vector_l1_distance(sq8vector, sq8vector);
