-- sq8vector: one byte per dimension plus a per-vector offset and scale (about 4x
-- smaller than qvector in the heap and TOAST), with qvector's text form and operators.

CREATE TYPE sq8vector;

CREATE FUNCTION sq8vector_in(cstring, oid, integer) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_out(sq8vector) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_recv(internal, oid, integer) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_send(sq8vector) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- EXTERNAL storage as for qvector: codes barely compress.
CREATE TYPE sq8vector (
    INPUT     = sq8vector_in,
    OUTPUT    = sq8vector_out,
    TYPMOD_IN = sq8vector_typmod_in,
    RECEIVE   = sq8vector_recv,
    SEND      = sq8vector_send,
    ALIGNMENT = int4,
    STORAGE   = external,
    CATEGORY  = 'q'    -- qvector's category, where qvector is the preferred type
);

-- typmod coercion and casts (as pgvector's halfvec: to the compact type implicitly,
-- back to float4 by assignment)

CREATE FUNCTION sq8vector(sq8vector, integer, boolean) RETURNS sq8vector
    AS 'MODULE_PATHNAME', 'sq8vector_typmod_cast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_to_sq8vector(qvector, integer, boolean) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_to_qvector(sq8vector, integer, boolean) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_sq8vector(integer[], integer, boolean) RETURNS sq8vector
    AS 'MODULE_PATHNAME', 'array_to_sq8vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_sq8vector(real[], integer, boolean) RETURNS sq8vector
    AS 'MODULE_PATHNAME', 'array_to_sq8vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_sq8vector(double precision[], integer, boolean) RETURNS sq8vector
    AS 'MODULE_PATHNAME', 'array_to_sq8vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_sq8vector(numeric[], integer, boolean) RETURNS sq8vector
    AS 'MODULE_PATHNAME', 'array_to_sq8vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_to_float4(sq8vector, integer, boolean) RETURNS real[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (sq8vector AS sq8vector) WITH FUNCTION sq8vector(sq8vector, integer, boolean) AS IMPLICIT;
CREATE CAST (qvector AS sq8vector) WITH FUNCTION qvector_to_sq8vector(qvector, integer, boolean) AS IMPLICIT;
CREATE CAST (sq8vector AS qvector) WITH FUNCTION sq8vector_to_qvector(sq8vector, integer, boolean) AS ASSIGNMENT;
CREATE CAST (integer[] AS sq8vector) WITH FUNCTION array_to_sq8vector(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (real[] AS sq8vector) WITH FUNCTION array_to_sq8vector(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS sq8vector) WITH FUNCTION array_to_sq8vector(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (numeric[] AS sq8vector) WITH FUNCTION array_to_sq8vector(numeric[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (sq8vector AS real[]) WITH FUNCTION sq8vector_to_float4(sq8vector, integer, boolean) AS ASSIGNMENT;

-- functions (computed on the codes)

CREATE FUNCTION l2_distance(sq8vector, sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME', 'sq8vector_l2_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_l2_squared_distance(sq8vector, sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION inner_product(sq8vector, sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME', 'sq8vector_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_negative_inner_product(sq8vector, sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cosine_distance(sq8vector, sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME', 'sq8vector_cosine_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_cosine_distance(sq8vector, sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l1_distance(sq8vector, sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME', 'sq8vector_l1_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_dims(sq8vector) RETURNS integer
    AS 'MODULE_PATHNAME', 'sq8vector_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_norm(sq8vector) RETURNS float8
    AS 'MODULE_PATHNAME', 'sq8vector_norm' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l2_normalize(sq8vector) RETURNS sq8vector
    AS 'MODULE_PATHNAME', 'sq8vector_l2_normalize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION binary_quantize(sq8vector) RETURNS bit
    AS 'MODULE_PATHNAME', 'sq8vector_binary_quantize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION subvector(sq8vector, integer, integer) RETURNS sq8vector
    AS 'MODULE_PATHNAME', 'sq8vector_subvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_concat(sq8vector, sq8vector) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sq8vector_add(sq8vector, sq8vector) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_sub(sq8vector, sq8vector) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_mul(sq8vector, sq8vector) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- operators

CREATE OPERATOR <-> (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = l1_distance, COMMUTATOR = '<+>');
CREATE OPERATOR + (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_add, COMMUTATOR = +);
CREATE OPERATOR - (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_sub);
CREATE OPERATOR * (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_mul, COMMUTATOR = *);
CREATE OPERATOR || (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_concat);

-- comparison (on the decoded values) and the btree operator class

CREATE FUNCTION sq8vector_lt(sq8vector, sq8vector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_le(sq8vector, sq8vector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_eq(sq8vector, sq8vector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_ne(sq8vector, sq8vector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_ge(sq8vector, sq8vector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_gt(sq8vector, sq8vector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_cmp(sq8vector, sq8vector) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR < (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR = (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR >= (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR > (LEFTARG = sq8vector, RIGHTARG = sq8vector, PROCEDURE = sq8vector_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS sq8vector_ops DEFAULT FOR TYPE sq8vector USING btree AS
    OPERATOR 1 <,
    OPERATOR 2 <=,
    OPERATOR 3 =,
    OPERATOR 4 >=,
    OPERATOR 5 >,
    FUNCTION 1 sq8vector_cmp(sq8vector, sq8vector);

-- aggregates: float8 sums of the decoded values (qvector's state and combine function),
-- the result quantized

CREATE FUNCTION sq8vector_accum(double precision[], sq8vector) RETURNS double precision[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_sum_accum(double precision[], sq8vector) RETURNS double precision[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_avg(double precision[]) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sq8vector_sum(double precision[]) RETURNS sq8vector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE avg(sq8vector) (
    SFUNC = sq8vector_accum, STYPE = double precision[], FINALFUNC = sq8vector_avg,
    COMBINEFUNC = qvector_combine, INITCOND = '{0}', PARALLEL = SAFE
);
CREATE AGGREGATE sum(sq8vector) (
    SFUNC = sq8vector_sum_accum, STYPE = double precision[], FINALFUNC = sq8vector_sum,
    COMBINEFUNC = qvector_combine, INITCOND = '{0}', PARALLEL = SAFE
);
