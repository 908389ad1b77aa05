defmodule LsmIndex.Filter.Index.Affected do
  @moduledoc """
  How an equality index answers the host's `LsmIndex.Filter.Index.Protocol.affected_shapes/4`
  (the part both `LsmIndex.Filter.EqualityIndex` and `LsmIndex.Filter.LsmEqualityIndex`
  share): the index reads its own column of the record into a key, takes that key's
  candidates, and checks their residuals on the record.

      record ─▶ key of record[field] ─▶ candidates(key) ─▶ nil residual: matched
                                                       └▶ the rest: evaluated on record

  ## Options (the index's `new/1`: the counterpart of the host's `Index.new("=", type)`)

    * `:type` - the column's type (`LsmIndex.Filter.ColumnType`), by which the default key
      function parses `record[field]` into the filter's value key (one NIF call:
      `LsmIndex.Filter.Predicate.record_key!/3`). No default: without it (or `:key`)
      `affected_shapes/4` raises `ArgumentError`.
    * `:key` - `fun(text) -> {:ok, key} | :null | :error`, replacing the default: the key the
      index holds for a column text (a host passes its own constant parser, so its typed
      constants are the keys). `record[field]` is read as is (no pseudo columns) and a
      `nil` or missing value is never passed (it is NULL). Default `nil`.
    * `:eval` - `fun(and_where, record, shapes) -> boolean`, replacing the default: whether
      a candidate's residual holds on the record (a host passes its own evaluator for its
      `and_where` terms); a candidate matches when it returns `true`; what it raises is
      raised. Default `nil`: the residuals are the filter's compiled ones, all evaluated in
      one NIF call (`LsmIndex.Filter.Predicate.eval_record!/3`).

  ## Answers

    * NULL or a missing column: no shape (`=` is never true on NULL).
    * A value that is not one of the type (or `:error` from `:key`): every shape of this
      index (`all_shape_ids/1`): the host's rescue of a bad value, scoped to this index.
    * Otherwise the key's candidates: those without a residual, and those whose residual is
      true or fails to evaluate (an error routes, as in `LsmIndex.Filter`; so does a column
      the residual reads whose text does not parse).

  `shapes` is accepted and passed only to `:eval`: the compiled residuals are
  self-contained.
  """

  alias LsmIndex.Filter.{ColumnType, Predicate}

  defstruct [:type, :parser, :key, :eval]

  @typedoc "An index's `affected_shapes/4` configuration."
  @type t :: %__MODULE__{
          type: ColumnType.t() | nil,
          parser: Predicate.parser() | nil,
          key: (term() -> {:ok, term()} | :null | :error) | nil,
          eval: (term(), map(), term() -> boolean()) | nil
        }

  @names [:type, :key, :eval]

  @doc "The option names this module reads (see the moduledoc)."
  @spec option_names() :: [atom()]
  def option_names, do: @names

  @doc """
  The configuration of `opts` (`:type`, `:key`, `:eval`; others are refused), or `nil` when
  none is given. Raises `ArgumentError` for an invalid one.
  """
  @spec new!(keyword()) :: t() | nil
  def new!(opts) do
    opts = Keyword.validate!(opts, @names)

    type = Keyword.get(opts, :type)

    unless type == nil or ColumnType.valid?(type),
      do:
        raise(
          ArgumentError,
          ":type is a column type (see LsmIndex.Filter.ColumnType), got: #{inspect(type)}"
        )

    fun!(opts, :key, 1)
    fun!(opts, :eval, 3)

    if opts == [] do
      nil
    else
      parser = if type, do: Predicate.parser(type)
      %__MODULE__{type: type, parser: parser, key: opts[:key], eval: opts[:eval]}
    end
  end

  defp fun!(opts, name, arity) do
    case Keyword.get(opts, name) do
      nil ->
        :ok

      fun when is_function(fun, arity) ->
        :ok

      other ->
        raise ArgumentError, "#{inspect(name)} is a function of #{arity}, got: #{inspect(other)}"
    end
  end

  @doc """
  `affected_shapes/4` of an index configured by `conf`: `candidates` gives a key's
  `{shape_id, and_where}` pairs, `all` every shape id of the index (see the moduledoc).
  """
  @spec affected(t() | nil, term(), map(), term(), (term() -> Enumerable.t()), (() -> MapSet.t())) ::
          MapSet.t()
  def affected(conf, field, record, shapes, candidates, all) when is_map(record) do
    case key(conf, field, record) do
      {:ok, key} -> matching(conf, candidates.(key), record, shapes)
      :null -> MapSet.new()
      :error -> all.()
    end
  end

  def affected(_conf, _field, record, _shapes, _candidates, _all),
    do: raise(ArgumentError, "a record is a map of column => text, got: #{inspect(record)}")

  defp key(nil, _field, _record),
    do:
      raise(
        ArgumentError,
        "affected_shapes/4 needs the column's type: make the index with new(type: type) " <>
          "(or new(key: fun))"
      )

  defp key(%{key: nil, parser: nil}, field, record), do: key(nil, field, record)

  defp key(%{key: nil, parser: parser}, field, record) do
    case Predicate.record_key!(parser, field, record) do
      nil -> :null
      :bad -> :error
      key -> {:ok, key}
    end
  end

  defp key(%{key: fun}, field, record) do
    case Map.get(record, field) do
      nil ->
        :null

      text ->
        case fun.(text) do
          {:ok, _key} = ok ->
            ok

          answer when answer in [:null, :error] ->
            answer

          other ->
            raise ArgumentError,
                  ":key answers {:ok, key}, :null or :error, got: #{inspect(other)}"
        end
    end
  end

  # a candidate without a residual matches as found; the rest are checked on the record
  defp matching(conf, candidates, record, shapes) do
    {acc, checks, count} =
      Enum.reduce(candidates, {MapSet.new(), [], 0}, fn
        {id, nil}, {acc, checks, count} -> {MapSet.put(acc, id), checks, count}
        {id, and_where}, {acc, checks, count} -> {acc, [{id, and_where} | checks], count + 1}
      end)

    case conf.eval do
      nil ->
        {matched, errors} = Predicate.eval_record!(record, checks, count)
        acc |> put_all(matched) |> put_all(errors)

      eval ->
        Enum.reduce(checks, acc, fn {id, and_where}, acc ->
          if eval.(and_where, record, shapes) == true, do: MapSet.put(acc, id), else: acc
        end)
    end
  end

  defp put_all(set, ids), do: Enum.reduce(ids, set, &MapSet.put(&2, &1))
end
