-- qvector: a float4 vector type with pgvector's SQL conventions.

CREATE TYPE qvector;

CREATE FUNCTION qvector_in(cstring, oid, integer) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_out(qvector) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_recv(internal, oid, integer) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_send(qvector) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- EXTERNAL storage: float data barely compresses, so large vectors go out of line
-- uncompressed (no wasted pglz attempt) and small ones stay inline.
CREATE TYPE qvector (
    INPUT     = qvector_in,
    OUTPUT    = qvector_out,
    TYPMOD_IN = qvector_typmod_in,
    RECEIVE   = qvector_recv,
    SEND      = qvector_send,
    STORAGE   = external,
    -- qvector and sq8vector share a type category in which qvector is preferred, so an
    -- untyped literal ('[1,2]') resolves to qvector when both types have an overload.
    CATEGORY  = 'q',
    PREFERRED = true
);

-- typmod coercion and casts

CREATE FUNCTION qvector(qvector, integer, boolean) RETURNS qvector
    AS 'MODULE_PATHNAME', 'qvector_typmod_cast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_qvector(integer[], integer, boolean) RETURNS qvector
    AS 'MODULE_PATHNAME', 'array_to_qvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_qvector(real[], integer, boolean) RETURNS qvector
    AS 'MODULE_PATHNAME', 'array_to_qvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_qvector(double precision[], integer, boolean) RETURNS qvector
    AS 'MODULE_PATHNAME', 'array_to_qvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_qvector(numeric[], integer, boolean) RETURNS qvector
    AS 'MODULE_PATHNAME', 'array_to_qvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_to_float4(qvector, integer, boolean) RETURNS real[]
    AS 'MODULE_PATHNAME', 'qvector_to_float4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (qvector AS qvector) WITH FUNCTION qvector(qvector, integer, boolean) AS IMPLICIT;
CREATE CAST (integer[] AS qvector) WITH FUNCTION array_to_qvector(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (real[] AS qvector) WITH FUNCTION array_to_qvector(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS qvector) WITH FUNCTION array_to_qvector(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (numeric[] AS qvector) WITH FUNCTION array_to_qvector(numeric[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (qvector AS real[]) WITH FUNCTION qvector_to_float4(qvector, integer, boolean) AS IMPLICIT;

-- functions

CREATE FUNCTION l2_distance(qvector, qvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'qvector_l2_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_l2_squared_distance(qvector, qvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'qvector_l2_squared_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION inner_product(qvector, qvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'qvector_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_negative_inner_product(qvector, qvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'qvector_negative_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cosine_distance(qvector, qvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'qvector_cosine_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l1_distance(qvector, qvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'qvector_l1_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_dims(qvector) RETURNS integer
    AS 'MODULE_PATHNAME', 'qvector_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_norm(qvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'qvector_norm' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l2_normalize(qvector) RETURNS qvector
    AS 'MODULE_PATHNAME', 'qvector_l2_normalize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION binary_quantize(qvector) RETURNS bit
    AS 'MODULE_PATHNAME', 'qvector_binary_quantize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION subvector(qvector, integer, integer) RETURNS qvector
    AS 'MODULE_PATHNAME', 'qvector_subvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_concat(qvector, qvector) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION qvector_add(qvector, qvector) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_sub(qvector, qvector) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_mul(qvector, qvector) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- operators

CREATE OPERATOR <-> (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = l1_distance, COMMUTATOR = '<+>');
CREATE OPERATOR + (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_add, COMMUTATOR = +);
CREATE OPERATOR - (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_sub);
CREATE OPERATOR * (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_mul, COMMUTATOR = *);
CREATE OPERATOR || (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_concat);

-- comparison and the btree operator class

CREATE FUNCTION qvector_lt(qvector, qvector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_le(qvector, qvector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_eq(qvector, qvector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_ne(qvector, qvector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_ge(qvector, qvector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_gt(qvector, qvector) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_cmp(qvector, qvector) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR < (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR = (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR >= (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR > (LEFTARG = qvector, RIGHTARG = qvector, PROCEDURE = qvector_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS qvector_ops DEFAULT FOR TYPE qvector USING btree AS
    OPERATOR 1 <,
    OPERATOR 2 <=,
    OPERATOR 3 =,
    OPERATOR 4 >=,
    OPERATOR 5 >,
    FUNCTION 1 qvector_cmp(qvector, qvector);

-- aggregates

CREATE FUNCTION qvector_accum(double precision[], qvector) RETURNS double precision[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_sum_accum(double precision[], qvector) RETURNS double precision[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_combine(double precision[], double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_avg(double precision[]) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION qvector_sum(double precision[]) RETURNS qvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE avg(qvector) (
    SFUNC = qvector_accum, STYPE = double precision[], FINALFUNC = qvector_avg,
    COMBINEFUNC = qvector_combine, INITCOND = '{0}', PARALLEL = SAFE
);
CREATE AGGREGATE sum(qvector) (
    SFUNC = qvector_sum_accum, STYPE = double precision[], FINALFUNC = qvector_sum,
    COMBINEFUNC = qvector_combine, INITCOND = '{0}', PARALLEL = SAFE
);
