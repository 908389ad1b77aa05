defmodule LsmIndex.Filter.ColumnType do
  @moduledoc """
  The Postgres column types of a table's columns, and the one check of a columns argument
  (`LsmIndex.Filter`, `LsmIndex.Where`, `LsmIndex.ShapeRouter`).

  A type is one of `:int2 :int4 :int8 :float4 :float8 :numeric :bool :text :varchar :uuid
  :date :time :timestamp :timestamptz`, or an enum: `{:enum, "name", ["label", ...]}` (a
  non-empty list of distinct labels, in declaration order) names PostgreSQL's enum type, so
  a clause can name it as PostgreSQL does (`'sad'::mood`, `CAST(s AS mood)`, `mood 'sad'`;
  the name as PostgreSQL folds the identifier: `"mood"` for `CREATE TYPE Mood`), and
  `{:enum, ["label", ...]}` is an enum known by its labels only (its column takes untyped
  labels, `e = 'sad'`, but SQL cannot name its type). Columns whose enums share a name
  share its labels. `{:array, type}` is a one-dimensional array of any of these (`int8[]`,
  `text[]`, `mood[]`; not an array of arrays): its values are PostgreSQL's array text
  (`{1,2,NULL}`, `{"a b",c}`, `{}`). What a type means — how its Postgres text is read, how its values compare
  and which literals it takes — is the Rust predicate engine's (`lsm_index_core::predicate`),
  reached through `LsmIndex.Where` and `LsmIndex.Filter.Predicate`; this module only names the
  types.
  """

  @typedoc "A column type."
  @type t ::
          :int2
          | :int4
          | :int8
          | :float4
          | :float8
          | :numeric
          | :bool
          | :text
          | :varchar
          | :uuid
          | :date
          | :time
          | :timestamp
          | :timestamptz
          | {:enum, String.t(), [String.t(), ...]}
          | {:enum, [String.t(), ...]}
          | {:array, element()}
  @typedoc "An array's element type: any type but an array."
  @type element ::
          atom()
          | {:enum, String.t(), [String.t(), ...]}
          | {:enum, [String.t(), ...]}
  @typedoc "A table's columns: `{name, type}` pairs, as a list or a map."
  @type columns :: [{String.t(), t()}] | %{String.t() => t()}

  @types [
    :int2,
    :int4,
    :int8,
    :float4,
    :float8,
    :numeric,
    :bool,
    :text,
    :varchar,
    :uuid,
    :date,
    :time,
    :timestamp,
    :timestamptz
  ]

  @doc "The named types (besides the enums)."
  @spec types() :: [atom()]
  def types, do: @types

  @doc """
  Whether `type` is a column type: a named one, an enum of distinct labels, or an array of
  either.
  """
  @spec valid?(term()) :: boolean()
  def valid?({:array, {:array, _}}), do: false
  def valid?({:array, element}), do: valid?(element)

  def valid?({:enum, name, labels}),
    do:
      is_binary(name) and name != "" and not String.contains?(name, "\0") and
        valid?({:enum, labels})

  def valid?({:enum, [_ | _] = labels}),
    do: Enum.all?(labels, &is_binary/1) and length(Enum.uniq(labels)) == length(labels)

  def valid?(type), do: type in @types

  @doc false
  # The one check of a columns argument: `{name, type}` pairs in a list or a map, names
  # strings and unique, types valid, one label list per enum name. Returns the pairs in
  # order; raises `ArgumentError` for anything else.
  @spec columns!(term()) :: [{String.t(), t()}]
  def columns!(columns) when is_map(columns),
    do: columns |> Enum.map(&column!/1) |> same_enums!()

  def columns!(columns) when is_list(columns) do
    pairs = Enum.map(columns, &column!/1)
    names = Enum.map(pairs, &elem(&1, 0))

    if length(Enum.uniq(names)) != length(names),
      do: raise(ArgumentError, "column names must be unique, got: #{inspect(names)}")

    same_enums!(pairs)
  end

  def columns!(other),
    do:
      raise(
        ArgumentError,
        "columns are {name, type} pairs (a list or a map), got: #{inspect(other)}"
      )

  defp column!({name, type}) when is_binary(name), do: {name, column_type!(name, type)}

  defp column!(other),
    do:
      raise(
        ArgumentError,
        "columns are {name, type} pairs with string names, got: #{inspect(other)}"
      )

  # `pairs` if every enum name has one list of labels among them.
  defp same_enums!(pairs) do
    pairs
    |> Enum.flat_map(fn
      {_, {:enum, name, _} = type} -> [{name, type}]
      {_, {:array, {:enum, name, _} = type}} -> [{name, type}]
      _ -> []
    end)
    |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))
    |> Enum.each(fn {name, types} ->
      if length(Enum.uniq(types)) > 1,
        do:
          raise(
            ArgumentError,
            "enum type #{inspect(name)} has one list of labels, got: #{inspect(Enum.uniq(types))}"
          )
    end)

    pairs
  end

  @doc false
  # `type` if it is a valid type of column `name`; raises `ArgumentError` naming both.
  @spec column_type!(String.t(), term()) :: t()
  def column_type!(name, type) do
    unless valid?(type),
      do:
        raise(
          ArgumentError,
          "column #{inspect(name)} has type #{inspect(type)}, expected one of " <>
            "#{inspect(@types)}, {:enum, name, labels}, {:enum, labels} (labels: a " <>
            "non-empty list of distinct strings; name: a non-empty string without NUL) " <>
            "or {:array, type} of one of those"
        )

    type
  end

  @doc false
  # `type` as the NIF reads it: its name as a string, `{"enum", name, labels}` for a named
  # enum, `{"enum", labels}` for one known by its labels, `{"array", element}` for an array.
  @spec native(t()) ::
          String.t()
          | {String.t(), [String.t()]}
          | {String.t(), String.t(), [String.t()]}
          | {String.t(), term()}
  def native({:array, element}), do: {"array", native(element)}
  def native({:enum, name, labels}), do: {"enum", name, labels}
  def native({:enum, labels}), do: {"enum", labels}
  def native(type) when is_atom(type), do: Atom.to_string(type)

  @doc false
  # `type` for a message: `int4`, `{:enum, "mood", ["a", "b"]}`.
  @spec name(t()) :: String.t()
  def name(type) when is_atom(type), do: Atom.to_string(type)
  def name(type), do: inspect(type)
end
