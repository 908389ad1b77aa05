defmodule LsmIndex.Filter.ColumnType do
  @moduledoc """
  The Postgres column types a filter understands: checks shape literals, parses the text values
  that WAL changes carry, and orders values the way Postgres does.

  Every type has one canonical Elixir value per Postgres value, so equality is `===` and the
  canonical value is what the equality indexes store:

    * `:int2`, `:int4`, `:int8` - integers in the type's range (`"007"` parses to `7`)
    * `:float8` - floats, `-0.0` folded into `0.0`; the text `NaN`, `Infinity` and `-Infinity`
      parse to `:nan`, `:infinity` and `:neg_infinity`, which order as Postgres orders them
      (`-Infinity` < numbers < `Infinity` < `NaN`); an integer literal is read as a float
    * `:bool` - `true`/`false` (text `t`, `true`, `yes`, `on`, `1`, ... any case, as Postgres)
    * `:text` - the binary itself; ordering is bytewise (the `C` collation)
    * `:varchar` - as `:text` (PostgreSQL's `varchar`/`character varying`)
    * `:uuid` - lowercase canonical `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, so literals and
      values match case-insensitively (32 hex digits without hyphens are accepted too)
  """

  @typedoc "A supported column type."
  @type t :: :int2 | :int4 | :int8 | :float8 | :bool | :text | :varchar | :uuid
  @typedoc "A table's columns: `{name, type}` pairs, as a list or a map."
  @type columns :: [{String.t(), t()}] | %{String.t() => t()}
  @typedoc "A canonical value of some column type."
  @type value :: integer() | float() | boolean() | binary() | :nan | :infinity | :neg_infinity

  @types [:int2, :int4, :int8, :float8, :bool, :text, :varchar, :uuid] ++
           [:float4, :numeric, :date, :time, :timestamp, :timestamptz]
  @ranges %{
    int2: {-32_768, 32_767},
    int4: {-2_147_483_648, 2_147_483_647},
    int8: {-9_223_372_036_854_775_808, 9_223_372_036_854_775_807}
  }

  @doc "The supported types."
  @spec types() :: [t()]
  def types, do: @types

  @doc "Whether `type` is a supported type."
  @spec valid?(term()) :: boolean()
  def valid?({:enum, labels}) when is_list(labels) and labels != [],
    do: Enum.all?(labels, &is_binary/1) and length(Enum.uniq(labels)) == length(labels)

  def valid?(type), do: type in @types

  @doc false
  # The one check of a columns argument (`LsmIndex.Filter`, `LsmIndex.Where`,
  # `LsmIndex.ShapeRouter`): `{name, type}` pairs in a list or a map, names strings and unique,
  # types supported. Returns the pairs in order; raises `ArgumentError` for anything else.
  @spec columns!(term()) :: [{String.t(), t()}]
  def columns!(columns) when is_map(columns), do: Enum.map(columns, &column!/1)

  def columns!(columns) when is_list(columns) do
    pairs = Enum.map(columns, &column!/1)
    names = Enum.map(pairs, &elem(&1, 0))

    if length(Enum.uniq(names)) != length(names),
      do: raise(ArgumentError, "column names must be unique, got: #{inspect(names)}")

    pairs
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

  @doc false
  # `type` if it is a supported type of column `name`; raises `ArgumentError` naming both.
  @spec column_type!(String.t(), term()) :: t()
  def column_type!(name, type) do
    unless valid?(type),
      do:
        raise(
          ArgumentError,
          "column #{inspect(name)} has type #{inspect(type)}, expected one of " <>
            "#{inspect(@types)} or {:enum, [label, ...]} (distinct strings)"
        )

    type
  end

  @doc "The canonical value of an Elixir literal for a `type` column, or `:error`."
  @spec literal(t(), term()) :: {:ok, value()} | :error
  # an integer literal is an int4/int8 in PostgreSQL: it compares with a smaller integer
  # column as it is (`int2_col > -32769` is valid SQL)
  def literal(type, v) when type in [:int2, :int4, :int8] and is_integer(v),
    do: in_range(:int8, v)

  def literal(:float8, v) when is_float(v), do: {:ok, fold_zero(v)}
  def literal(:float8, v) when is_integer(v), do: {:ok, fold_zero(v * 1.0)}
  def literal(:float8, v) when v in [:nan, :infinity, :neg_infinity], do: {:ok, v}
  def literal(:bool, v) when is_boolean(v), do: {:ok, v}
  def literal(type, v) when type in [:text, :varchar] and is_binary(v), do: {:ok, v}
  def literal(:uuid, v) when is_binary(v), do: uuid(v)
  def literal(_type, _v), do: :error

  @doc "The canonical value of Postgres text `text` in a `type` column, or `:error`."
  @spec parse(t(), binary()) :: {:ok, value()} | :error
  # PostgreSQL's int, float and bool input functions skip surrounding white space.
  def parse(type, text) when type in [:int2, :int4, :int8] do
    case Integer.parse(trim_space(text)) do
      {int, ""} -> in_range(type, int)
      _ -> :error
    end
  end

  def parse(:float8, text), do: parse_float(String.downcase(trim_space(text)))
  def parse(type, text) when type in [:text, :varchar], do: {:ok, text}
  def parse(:uuid, text), do: uuid(text)

  def parse(:bool, text), do: parse_bool(String.downcase(trim_space(text), :ascii))

  @doc "Orders two non-null canonical values of one type as Postgres does."
  @spec compare(value(), value()) :: :lt | :eq | :gt
  def compare(a, b) when is_number(a) and is_number(b), do: cmp(a, b)
  def compare(a, b) when is_atom(a) or is_atom(b), do: cmp(rank(a), rank(b))
  def compare(a, b), do: cmp(a, b)

  defp cmp(a, b) when a < b, do: :lt
  defp cmp(a, b) when a > b, do: :gt
  defp cmp(_a, _b), do: :eq

  # booleans are atoms too: false < true, as in Postgres
  defp rank(false), do: {0, 0}
  defp rank(true), do: {0, 1}
  defp rank(:neg_infinity), do: {-1, 0}
  defp rank(:infinity), do: {1, 0}
  defp rank(:nan), do: {2, 0}
  defp rank(number), do: {0, number}

  # As PostgreSQL's boolin reads it: true/false/yes/no or any prefix of one, on, off or of,
  # 1, 0 (the Rust engine's `parse_bool`).
  defp parse_bool(""), do: :error
  defp parse_bool(w) when w in ["1", "on"], do: {:ok, true}
  defp parse_bool(w) when w in ["0", "of", "off"], do: {:ok, false}

  defp parse_bool(w) do
    cond do
      String.starts_with?("true", w) or String.starts_with?("yes", w) -> {:ok, true}
      String.starts_with?("false", w) or String.starts_with?("no", w) -> {:ok, false}
      true -> :error
    end
  end

  defp in_range(type, int) do
    {min, max} = Map.fetch!(@ranges, type)
    if int >= min and int <= max, do: {:ok, int}, else: :error
  end

  defp fold_zero(f) when f == 0.0, do: 0.0
  defp fold_zero(f), do: f

  defp parse_float("nan"), do: {:ok, :nan}
  defp parse_float(inf) when inf in ["infinity", "+infinity", "inf", "+inf"], do: {:ok, :infinity}
  defp parse_float(inf) when inf in ["-infinity", "-inf"], do: {:ok, :neg_infinity}
  defp parse_float("." <> _ = text), do: parse_float("0" <> text)
  defp parse_float("-." <> rest), do: parse_float("-0." <> rest)

  defp parse_float(text) do
    # Float.parse stops at the first character it cannot use and refuses an overflow; a
    # nonzero text that underflows to zero is out of range too (as in PostgreSQL's float8in).
    case Float.parse(text) do
      {f, ""} when f == 0.0 ->
        if nonzero_mantissa?(text), do: :error, else: {:ok, 0.0}

      {f, ""} ->
        {:ok, f}

      _ ->
        :error
    end
  end

  defp nonzero_mantissa?(text) do
    text |> String.split(["e", "E"]) |> hd() |> String.match?(~r/[1-9]/)
  end

  # the white space C's isspace knows, which PostgreSQL's input functions skip
  @c_space ~c" \t\n\r\v\f"

  defp trim_space(text), do: text |> trim_leading_space() |> trim_trailing_space()

  defp trim_leading_space(<<c, rest::binary>>) when c in @c_space, do: trim_leading_space(rest)
  defp trim_leading_space(text), do: text

  defp trim_trailing_space(text) do
    size = byte_size(text)

    if size > 0 and :binary.last(text) in @c_space,
      do: trim_trailing_space(binary_part(text, 0, size - 1)),
      else: text
  end

  # As PostgreSQL's uuid_in reads it: 32 hex digits, optionally in braces, with an optional
  # hyphen after any group of four digits (but not at the end).
  defp uuid("{" <> rest) do
    case uuid_digits(rest, 0, []) do
      {:ok, hex, "}"} -> hex_uuid(hex)
      _ -> :error
    end
  end

  defp uuid(text) do
    case uuid_digits(text, 0, []) do
      {:ok, hex, ""} -> hex_uuid(hex)
      _ -> :error
    end
  end

  defp uuid_digits(rest, 32, acc), do: {:ok, acc |> Enum.reverse() |> IO.iodata_to_binary(), rest}

  defp uuid_digits(<<c, rest::binary>>, n, acc)
       when c in ?0..?9 or c in ?a..?f or c in ?A..?F do
    case rest do
      "-" <> after_hyphen when rem(n, 4) == 3 and n < 31 ->
        uuid_digits(after_hyphen, n + 1, [c | acc])

      _ ->
        uuid_digits(rest, n + 1, [c | acc])
    end
  end

  defp uuid_digits(_rest, _n, _acc), do: :error

  defp hex_uuid(hex) do
    lower = String.downcase(hex)

    if byte_size(lower) == 32 and hex?(lower) do
      <<a::binary-8, b::binary-4, c::binary-4, d::binary-4, e::binary-12>> = lower
      {:ok, Enum.join([a, b, c, d, e], "-")}
    else
      :error
    end
  end

  defp hex?(<<c, rest::binary>>) when c in ?0..?9 or c in ?a..?f, do: hex?(rest)
  defp hex?(<<>>), do: true
  defp hex?(_), do: false
end
