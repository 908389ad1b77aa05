defmodule LsmIndex.Demo.Wal2json do
  @moduledoc """
  Decodes the rows of the `wal2json` output plugin, format version 2, into the change tuples
  of `LsmIndex.Filter` (`{:insert, table, record}`, `{:update, table, old, new}`,
  `{:delete, table, old}`, `{:truncate, table}`) with PostgreSQL's text values. Not public
  API.

  One row is one JSON object: `{"action":"B"}` and `{"action":"C"}` around a transaction, `I`,
  `U`, `D` with `"columns"` (the new row) and `"identity"` (the old row: all columns under
  `REPLICA IDENTITY FULL`), `T` for a truncate. A value is PostgreSQL's text output as a JSON
  string, except that wal2json 2.5 writes `bool` as `true`/`false` (read back as PostgreSQL
  prints them, `t`/`f`), the numeric types (`int2 int4 int8 oid float4 float8 numeric`) as
  JSON numbers whose characters are PostgreSQL's text (`1.50`, `1e+300`: the token is kept
  as it is, never converted), and `NaN`/`Infinity` of those types as `null` (a loss
  wal2json 2.5 has no option against: the demo's workload writes neither), SQL NULL as
  `null`.

  The JSON reader covers what wal2json writes: objects, arrays, strings with every escape
  (`\\uXXXX` with surrogate pairs), numbers, `true`, `false`, `null`.
  """

  @typedoc "A table: `{schema, name}`."
  @type table :: {String.t(), String.t()}
  @typedoc "A decoded row."
  @type row ::
          :begin
          | :commit
          | {:insert, table(), map()}
          | {:update, table(), map(), map()}
          | {:delete, table(), map()}
          | {:truncate, table()}
          | {:other, String.t()}

  @doc "Options of `pg_logical_slot_peek_changes` and friends for this decoder."
  @spec plugin_options([String.t()]) :: [{String.t(), String.t()}]
  def plugin_options(tables) do
    [
      {"format-version", "2"},
      {"include-transaction", "true"},
      {"include-types", "false"},
      {"add-tables", Enum.join(tables, ",")}
    ]
  end

  @doc "One row of wal2json's output; raises `ArgumentError` on anything else."
  @spec decode(String.t()) :: row()
  def decode(line) do
    case parse(line) do
      %{"action" => "B"} ->
        :begin

      %{"action" => "C"} ->
        :commit

      %{"action" => "I"} = row ->
        {:insert, table(row), record(row["columns"])}

      %{"action" => "U"} = row ->
        {:update, table(row), record(row["identity"]), record(row["columns"])}

      %{"action" => "D"} = row ->
        {:delete, table(row), record(row["identity"])}

      %{"action" => "T"} = row ->
        {:truncate, table(row)}

      %{"action" => action} ->
        {:other, action}

      _ ->
        raise ArgumentError, "not a wal2json format 2 row: #{inspect(line, limit: 200)}"
    end
  end

  defp table(%{"schema" => schema, "table" => name}), do: {schema, name}

  # [{"name": n, "value": v}] -> %{n => text or nil}; `identity` is absent without a replica
  # identity (then the old row is unknown)
  defp record(nil), do: raise(ArgumentError, "a change without its row (REPLICA IDENTITY?)")
  defp record(columns), do: Map.new(columns, fn %{"name" => n, "value" => v} -> {n, text(v)} end)

  defp text(v) when is_binary(v), do: v
  defp text({:number, raw}), do: raw
  defp text(true), do: "t"
  defp text(false), do: "f"
  defp text(nil), do: nil

  @doc """
  Parses one JSON value: objects as maps, arrays as lists, strings as binaries, numbers as
  `{:number, text}` (their characters as written), `true`, `false`, `nil`.
  """
  @spec parse(String.t()) :: term()
  def parse(json) do
    case value(skip(json)) do
      {value, rest} ->
        if skip(rest) == "", do: value, else: bad(rest)
    end
  end

  defp value(<<?{, rest::binary>>), do: object(skip(rest), %{})
  defp value(<<?[, rest::binary>>), do: array(skip(rest), [])
  defp value(<<?", rest::binary>>), do: string(rest, [])
  defp value(<<"true", rest::binary>>), do: {true, rest}
  defp value(<<"false", rest::binary>>), do: {false, rest}
  defp value(<<"null", rest::binary>>), do: {nil, rest}
  defp value(<<c, _::binary>> = json) when c == ?- or c in ?0..?9, do: number(json, 0)
  defp value(rest), do: bad(rest)

  defp object(<<?}, rest::binary>>, acc) when acc == %{}, do: {acc, rest}

  defp object(<<?", rest::binary>>, acc) do
    {key, rest} = string(rest, [])

    case skip(rest) do
      <<?:, rest::binary>> ->
        {v, rest} = value(skip(rest))

        case skip(rest) do
          <<?,, rest::binary>> -> object(skip(rest), Map.put(acc, key, v))
          <<?}, rest::binary>> -> {Map.put(acc, key, v), rest}
          rest -> bad(rest)
        end

      rest ->
        bad(rest)
    end
  end

  defp object(rest, _acc), do: bad(rest)

  defp array(<<?], rest::binary>>, []), do: {[], rest}

  defp array(json, acc) do
    {v, rest} = value(json)

    case skip(rest) do
      <<?,, rest::binary>> -> array(skip(rest), [v | acc])
      <<?], rest::binary>> -> {Enum.reverse([v | acc]), rest}
      rest -> bad(rest)
    end
  end

  # the characters up to the closing quote, in chunks between escapes
  defp string(json, acc) do
    case :binary.match(json, ["\"", "\\"]) do
      {at, 1} ->
        <<chunk::binary-size(at), c, rest::binary>> = json

        if c == ?" do
          {IO.iodata_to_binary([acc | chunk]), rest}
        else
          {char, rest} = escape(rest)
          string(rest, [acc, chunk | char])
        end

      :nomatch ->
        bad(json)
    end
  end

  defp escape(<<?", rest::binary>>), do: {"\"", rest}
  defp escape(<<?\\, rest::binary>>), do: {"\\", rest}
  defp escape(<<?/, rest::binary>>), do: {"/", rest}
  defp escape(<<?b, rest::binary>>), do: {"\b", rest}
  defp escape(<<?f, rest::binary>>), do: {"\f", rest}
  defp escape(<<?n, rest::binary>>), do: {"\n", rest}
  defp escape(<<?r, rest::binary>>), do: {"\r", rest}
  defp escape(<<?t, rest::binary>>), do: {"\t", rest}

  defp escape(<<?u, hex::binary-size(4), rest::binary>>) do
    case {hex4(hex), rest} do
      {high, <<"\\u", low::binary-size(4), after_low::binary>>} when high in 0xD800..0xDBFF ->
        case hex4(low) do
          low when low in 0xDC00..0xDFFF ->
            {<<0x10000 + (high - 0xD800) * 0x400 + (low - 0xDC00)::utf8>>, after_low}

          _ ->
            bad(rest)
        end

      {code, rest} when code in 0xD800..0xDFFF ->
        bad(rest)

      {code, rest} ->
        {<<code::utf8>>, rest}
    end
  end

  defp escape(rest), do: bad(rest)

  defp hex4(hex) do
    case Integer.parse(hex, 16) do
      {n, ""} -> n
      _ -> bad(hex)
    end
  end

  # a number's characters as written (PostgreSQL's text output)
  defp number(json, n) do
    case json do
      <<_::binary-size(n), c, _::binary>> when c in ?0..?9 or c in [?-, ?+, ?., ?e, ?E] ->
        number(json, n + 1)

      <<raw::binary-size(n), rest::binary>> ->
        {{:number, raw}, rest}
    end
  end

  defp skip(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip(rest)
  defp skip(rest), do: rest

  defp bad(rest), do: raise(ArgumentError, "bad JSON at: #{inspect(rest, limit: 60)}")
end
