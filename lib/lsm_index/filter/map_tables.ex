defmodule LsmIndex.Filter.MapTables do
  @moduledoc false
  # The tables of `LsmIndex.Filter` with `index: :map` (and `:auto` tables below the
  # threshold): the pure-Elixir baseline, a persistent value.
  #
  # Per table: the types of the columns its shapes refer to, with the record parser built
  # from them (a NIF resource), one `EqualityIndex` (a map) per indexed column, the scanned
  # shapes (no index plan: checked on every change of the table), for each column the
  # shapes that refer to it and the shapes found through it (an index plan on it). Per
  # record: one NIF call parses the referenced columns (typed values, the value keys of the
  # indexed columns, the columns that did not parse), the indexes give their candidates,
  # and one more NIF call evaluates every candidate's and every scanned shape's residual on
  # the parsed row.
  #
  # A value that does not parse routes the shapes found through its column (any value
  # could have found them) and the candidates and scanned shapes that read it (the
  # evaluation answers them as errors): the router's rule, so both engines answer alike.

  alias LsmIndex.Filter.{ColumnType, EqualityIndex, Predicate}
  alias LsmIndex.Filter.Index.Protocol, as: Index

  # shapes: id => %{table, plans, residual, columns, source}; source: {sql, params, columns}
  # when kept (an :auto filter re-adds a table's shapes to its router set when it switches)
  defstruct tables: %{}, shapes: %{}

  @type t :: %__MODULE__{}

  # schema: the record parser of `types`, giving the keys of the `indexed` columns in order;
  # schema_of: what it was built from; residuals: how many shapes have one (without any, a
  # record's parsed row is never needed)
  @empty_table %{
    types: %{},
    refs: %{},
    found_by: %{},
    indexes: %{},
    scans: %{},
    shape_ids: MapSet.new(),
    residuals: 0,
    schema: nil,
    indexed: [],
    schema_of: nil
  }

  @doc "Whether shape `shape_id` is here."
  def has_shape?(%__MODULE__{shapes: shapes}, shape_id), do: Map.has_key?(shapes, shape_id)

  @doc "How many shapes table `table` has."
  def shape_count(%__MODULE__{tables: tables}, table) do
    case tables do
      %{^table => t} -> MapSet.size(t.shape_ids)
      _ -> 0
    end
  end

  @doc "`%{indexed: n, scanned: n}` of `table`."
  def shape_counts(%__MODULE__{tables: tables}, table) do
    case tables do
      %{^table => t} ->
        scanned = map_size(t.scans)
        %{indexed: MapSet.size(t.shape_ids) - scanned, scanned: scanned}

      _ ->
        %{indexed: 0, scanned: 0}
    end
  end

  @doc "The shapes of `table` as `{shape_id, source}` (kept sources only)."
  def sources(%__MODULE__{tables: tables, shapes: shapes}, table) do
    for id <- Map.fetch!(tables, table).shape_ids, do: {id, shapes[id].source}
  end

  @doc "Every shape id."
  def shape_ids(%__MODULE__{shapes: shapes}), do: Map.keys(shapes)

  @doc "Whether a map index serves `column` of `table`."
  def indexed?(%__MODULE__{tables: tables}, table, column),
    do: get_in(tables, [table, :indexes, column]) != nil

  @doc """
  Checks that shape `shape_id` (compiled: `%{plans, residual, columns}`) with column types
  `types` (a map) fits `table`: a column has one type across the shapes of a table that
  refer to it (the shape it replaces aside). Raises `ArgumentError` otherwise.
  """
  def check_types!(%__MODULE__{tables: tables}, table, shape_id, referenced, types) do
    t = Map.get(tables, table, @empty_table)

    for col <- referenced,
        other = t.types[col],
        other != nil and other != types[col],
        MapSet.size(MapSet.delete(t.refs[col], shape_id)) > 0 do
      raise ArgumentError,
            "column #{inspect(col)} of #{inspect(table)} is #{ColumnType.name(other)} in " <>
              "other shapes, not #{ColumnType.name(types[col])}"
    end

    :ok
  end

  @doc "Adds shape `shape_id` (checked by `check_types!/5`; any shape with its id removed)."
  def add(%__MODULE__{} = m, shape_id, table, compiled, types, source) do
    %{plans: plans, residual: residual, columns: referenced} = compiled
    t = Map.get(m.tables, table, @empty_table)
    types = Enum.reduce(referenced, t.types, &Map.put(&2, &1, Map.fetch!(types, &1)))

    refs =
      Enum.reduce(referenced, t.refs, fn col, refs ->
        Map.update(refs, col, MapSet.new([shape_id]), &MapSet.put(&1, shape_id))
      end)

    # the columns it is found through (its plans' keys all NULL: never found, but through
    # that column all the same, as the router has it)
    found = plans |> Enum.map(fn {col, _keys} -> base_column(col) end) |> Enum.uniq()

    found_by =
      Enum.reduce(found, t.found_by, fn col, found_by ->
        Map.update(found_by, col, MapSet.new([shape_id]), &MapSet.put(&1, shape_id))
      end)

    t = %{
      t
      | types: types,
        refs: refs,
        found_by: found_by,
        shape_ids: MapSet.put(t.shape_ids, shape_id),
        residuals: t.residuals + if(residual == nil, do: 0, else: 1)
    }

    # no plan: scanned; plans whose keys are all NULL: never found, as never true
    {t, plans} =
      case plans do
        [] ->
          {%{t | scans: Map.put(t.scans, shape_id, residual)}, :scan}

        plans ->
          plans = Enum.reject(plans, &match?({_col, []}, &1))

          t =
            Enum.reduce(plans, t, fn {col, keys}, t ->
              index = Map.get_lazy(t.indexes, col, &EqualityIndex.new/0)
              index = Index.add_shape_many(index, keys, shape_id, residual)
              %{t | indexes: Map.put(t.indexes, col, index)}
            end)

          {t, plans}
      end

    entry = %{
      table: table,
      plans: plans,
      found: found,
      residual: residual,
      columns: referenced,
      source: source
    }

    %{
      m
      | tables: Map.put(m.tables, table, with_schema(t)),
        shapes: Map.put(m.shapes, shape_id, entry)
    }
  end

  @doc "`m` without shape `shape_id` (unchanged when absent)."
  def remove(%__MODULE__{} = m, shape_id) do
    case Map.pop(m.shapes, shape_id) do
      {nil, _} ->
        m

      {%{table: table, plans: plans, found: found, residual: residual, columns: referenced},
       shapes} ->
        t = Map.fetch!(m.tables, table)

        t =
          case plans do
            :scan ->
              %{t | scans: Map.delete(t.scans, shape_id)}

            plans ->
              Enum.reduce(plans, t, fn {col, keys}, t ->
                index =
                  Index.remove_shape_many(Map.fetch!(t.indexes, col), keys, shape_id, residual)

                indexes =
                  if Index.empty?(index),
                    do: Map.delete(t.indexes, col),
                    else: Map.put(t.indexes, col, index)

                %{t | indexes: indexes}
              end)
          end

        {types, refs} =
          Enum.reduce(referenced, {t.types, t.refs}, fn col, {types, refs} ->
            left = MapSet.delete(Map.fetch!(refs, col), shape_id)

            if MapSet.size(left) == 0,
              do: {Map.delete(types, col), Map.delete(refs, col)},
              else: {types, Map.put(refs, col, left)}
          end)

        found_by =
          Enum.reduce(found, t.found_by, fn col, found_by ->
            left = MapSet.delete(Map.fetch!(found_by, col), shape_id)

            if MapSet.size(left) == 0,
              do: Map.delete(found_by, col),
              else: Map.put(found_by, col, left)
          end)

        t = %{
          t
          | types: types,
            refs: refs,
            found_by: found_by,
            shape_ids: MapSet.delete(t.shape_ids, shape_id),
            residuals: t.residuals - if(residual == nil, do: 0, else: 1)
        }

        tables =
          if MapSet.size(t.shape_ids) == 0,
            do: Map.delete(m.tables, table),
            else: Map.put(m.tables, table, with_schema(t))

        %{m | tables: tables, shapes: shapes}
    end
  end

  @doc "Every shape of `table` (a truncate)."
  def truncate(%__MODULE__{tables: tables}, table) do
    case tables do
      %{^table => t} -> t.shape_ids
      _ -> MapSet.new()
    end
  end

  @doc """
  The shapes `record` of `table` affects: parsed once (NIF), looked up in each indexed
  column's index, and every residual of the candidates and the scanned shapes evaluated in
  one NIF call; a column that did not parse routes the shapes found through it (see the
  module comment).
  """
  def route(%__MODULE__{tables: tables}, table, record) when is_map(record) do
    case tables do
      %{^table => t} ->
        {row, keys, bad} = Predicate.row!(t.schema, record, t.residuals > 0)

        acc =
          Enum.reduce(bad, MapSet.new(), fn col, acc ->
            MapSet.union(acc, Map.get(t.found_by, col, MapSet.new()))
          end)

        found = lookups(t.indexed, keys, t.indexes, {acc, [], 0})
        {acc, checks, count} = candidates(t.scans, found)

        case checks do
          [] ->
            acc

          checks ->
            {matched, errors} = Predicate.eval(row, checks, count)
            acc |> put_all(matched) |> put_all(errors)
        end

      _ ->
        MapSet.new()
    end
  end

  def route(_m, _table, record),
    do: raise(ArgumentError, "a record is a map of column => text, got: #{inspect(record)}")

  # the candidates of each indexed column's key (nil: NULL, missing or unparseable)
  defp lookups([_col | cols], [nil | keys], indexes, found),
    do: lookups(cols, keys, indexes, found)

  defp lookups([col | cols], [key | keys], indexes, found) do
    found = indexes |> Map.fetch!(col) |> Index.candidates(key) |> candidates(found)
    lookups(cols, keys, indexes, found)
  end

  defp lookups([], [], _indexes, found), do: found

  # (most lookups find nothing: no fold over an empty map or list)
  defp candidates([], found), do: found
  defp candidates(pairs, found) when pairs == %{}, do: found
  defp candidates(pairs, found), do: Enum.reduce(pairs, found, &candidate/2)

  # {matched, residuals to check, their count}: a shape without a residual matches as found
  defp candidate({shape_id, nil}, {acc, checks, count}),
    do: {MapSet.put(acc, shape_id), checks, count}

  defp candidate({shape_id, residual}, {acc, checks, count}),
    do: {acc, [{shape_id, residual} | checks], count + 1}

  # the column a plan column stands for (`lower(c)`'s pseudo column "\0lower\0c" is c's)
  defp base_column("\0" <> tagged), do: tagged |> String.split("\0", parts: 2) |> List.last()
  defp base_column(col), do: col

  defp put_all(set, []), do: set
  defp put_all(set, ids), do: Enum.reduce(ids, set, &MapSet.put(&2, &1))

  # `t` with a record parser for its current columns and indexes (rebuilt when they changed).
  defp with_schema(%{types: types, indexes: indexes} = t) do
    indexed = indexes |> Map.keys() |> Enum.sort()

    if t.schema_of == {types, indexed},
      do: t,
      else: %{
        t
        | schema: Predicate.schema(types, indexed),
          indexed: indexed,
          schema_of: {types, indexed}
      }
  end
end
