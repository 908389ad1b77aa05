defprotocol LsmIndex.Filter.Index.Protocol do
  @moduledoc """
  The contract of an equality index inside `LsmIndex.Filter`: `key => shapes`, one index per
  (table, column), with the sync service's `Index.Protocol` (`empty?/1`, `add_shape/4`,
  `remove_shape/4`, `affected_shapes/4`, `all_shape_ids/1`) and the filter's batched form
  beside it (`candidates/2`, `add_shape_many/4`, `remove_shape_many/4`).

  A `key` is the value key of a column value (a binary from the core's key encoder,
  `LsmIndex.Filter.Predicate`), never `nil` (a host's own typed constants with the `:key`
  option, see below). Each entry carries the shape's residual (`and_where`: a compiled
  residual, `nil` when none). A `(key, shape_id, and_where)` entry is added at most once and
  removed with the same arguments; the filter guarantees it. Functions return the new index;
  an implementation may share mutable state (a NIF resource) between versions, so callers
  keep only the latest one.

  Two ways to look up a record:

    * `affected_shapes/4`, the service's meaning: given the column (`field`) and the whole
      record, the index parses its own column by its type, and returns the matching shape
      ids, having evaluated each candidate's `and_where` itself. NULL or missing: none; a
      value that does not parse: `all_shape_ids/1` (the service's rescue, scoped to this
      index). The index is made for it with its column's type (`new(type: t)`, the service's
      `Index.new("=", t)`), and optionally a host's own key function and evaluator
      (`key:` and `eval:`): `LsmIndex.Filter.Index.Affected` has the details.
    * `candidates/2`, the filter's: the candidates of a key with their residuals, not
      evaluated: the filter evaluates every candidate of a record, from all its indexes and
      scans, in one call to the Rust engine. The residual is then an opaque term the index
      only stores and returns.
  """

  @doc "Whether no shape is indexed."
  @spec empty?(t) :: boolean()
  def empty?(index)

  @doc "Routes `key` to `shape_id` when `and_where` also holds."
  @spec add_shape(t, term(), term(), term()) :: t
  def add_shape(index, key, shape_id, and_where)

  @doc "Undoes one `add_shape/4` with the same arguments."
  @spec remove_shape(t, term(), term(), term()) :: t
  def remove_shape(index, key, shape_id, and_where)

  @doc "`add_shape/4` for every key of `keys` (distinct), in one step."
  @spec add_shape_many(t, [term()], term(), term()) :: t
  def add_shape_many(index, keys, shape_id, and_where)

  @doc "`remove_shape/4` for every key of `keys`, in one step."
  @spec remove_shape_many(t, [term()], term(), term()) :: t
  def remove_shape_many(index, keys, shape_id, and_where)

  @doc """
  The shapes routed from `key`, each with its residual: `{shape_id, and_where}` pairs (a map
  `shape_id => and_where` is such an enumerable), to be checked by the caller.
  """
  @spec candidates(t, term()) :: Enumerable.t()
  def candidates(index, key)

  @doc """
  The ids of the shapes routed from the value of column `field` (a plan column: a pseudo
  column such as `lower(c)`'s too) in `record` (column => Postgres text or `nil`) whose
  `and_where` holds on `record` (an evaluation error counts as holding). `shapes` (the
  service passes its shapes by id) goes only to an `eval:` hook.
  """
  @spec affected_shapes(t, term(), map(), term()) :: MapSet.t()
  def affected_shapes(index, field, record, shapes)

  @doc "Every shape id in the index."
  @spec all_shape_ids(t) :: MapSet.t()
  def all_shape_ids(index)
end
