-- vectorize_quant_pgvector: qhnsw over pgvector's vector and halfvec columns.
-- Needs both extensions (the control file's `requires`); while this script runs their
-- schemas are on the search_path, so their types and operators resolve unqualified.
-- The ORDER BY operators are pgvector's own, so application queries do not change.

\echo Use "CREATE EXTENSION vectorize_quant_pgvector" to load this file. \quit

-- Casts, by assignment (as pgvector's halfvec -> vector): explicit `::` and INSERT/UPDATE
-- convert, while operators never mix the two families implicitly.
CREATE FUNCTION vector_to_qvector(vector, integer, boolean) RETURNS qvector
    AS 'MODULE_PATHNAME', 'vector_to_qvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_to_vector(qvector, integer, boolean) RETURNS vector
    AS 'MODULE_PATHNAME', 'qvector_to_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_to_qvector(halfvec, integer, boolean) RETURNS qvector
    AS 'MODULE_PATHNAME', 'halfvec_to_qvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_to_sq8vector(vector, integer, boolean) RETURNS sq8vector
    AS 'MODULE_PATHNAME', 'vector_to_sq8vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (vector AS qvector) WITH FUNCTION vector_to_qvector(vector, integer, boolean) AS ASSIGNMENT;
CREATE CAST (qvector AS vector) WITH FUNCTION qvector_to_vector(qvector, integer, boolean) AS ASSIGNMENT;
CREATE CAST (halfvec AS qvector) WITH FUNCTION halfvec_to_qvector(halfvec, integer, boolean) AS ASSIGNMENT;
CREATE CAST (vector AS sq8vector) WITH FUNCTION vector_to_sq8vector(vector, integer, boolean) AS ASSIGNMENT;

-- Operator classes. Support function 1 is pgvector's distance function of the metric:
-- the index recognises the column type from the opclass's input type and the metric
-- from this function's name, and re-ranks with it (so rows come back in exactly the
-- operator's order).
CREATE OPERATOR CLASS vector_l2_ops FOR TYPE vector USING qhnsw AS
    OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 vector_l2_squared_distance(vector, vector);

CREATE OPERATOR CLASS vector_ip_ops FOR TYPE vector USING qhnsw AS
    OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 vector_negative_inner_product(vector, vector);

CREATE OPERATOR CLASS vector_cosine_ops FOR TYPE vector USING qhnsw AS
    OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(vector, vector);

CREATE OPERATOR CLASS vector_l1_ops FOR TYPE vector USING qhnsw AS
    OPERATOR 1 <+> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 l1_distance(vector, vector);

CREATE OPERATOR CLASS halfvec_l2_ops FOR TYPE halfvec USING qhnsw AS
    OPERATOR 1 <-> (halfvec, halfvec) FOR ORDER BY float_ops,
    FUNCTION 1 halfvec_l2_squared_distance(halfvec, halfvec);

CREATE OPERATOR CLASS halfvec_ip_ops FOR TYPE halfvec USING qhnsw AS
    OPERATOR 1 <#> (halfvec, halfvec) FOR ORDER BY float_ops,
    FUNCTION 1 halfvec_negative_inner_product(halfvec, halfvec);

CREATE OPERATOR CLASS halfvec_cosine_ops FOR TYPE halfvec USING qhnsw AS
    OPERATOR 1 <=> (halfvec, halfvec) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(halfvec, halfvec);

CREATE OPERATOR CLASS halfvec_l1_ops FOR TYPE halfvec USING qhnsw AS
    OPERATOR 1 <+> (halfvec, halfvec) FOR ORDER BY float_ops,
    FUNCTION 1 l1_distance(halfvec, halfvec);
