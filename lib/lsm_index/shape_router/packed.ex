defmodule LsmIndex.ShapeRouter.Packed do
  @moduledoc false
  # `ShapeRouter.pack_changes/2` and `ShapeRouter.route_many_packed/2`: a transaction's
  # changes of one table as the binary `router_route_many_packed` reads in place (layout and
  # checks: `lsm_index_core::packed_changes`):
  #
  #     width::32-little, count::32-little, then per change
  #       ?I, row  |  ?D, row  |  ?U, old_row, new_row  |  ?T
  #     row = per column of the router, in its order, its length word (a binary packed
  #           before columns were added to the table has fewer: they read as NULL):
  #             byte_size(text)::32-little  |  0xFFFFFFFF (nil, or a column the record lacks)
  #           then the texts, in the same order
  #
  # One pass over the changes, appending to one binary (the runtime grows it in place): per
  # record one map lookup per column into a list, then its lengths, then its texts (of the
  # variants tried — two binaries per row, iodata and one `IO.iodata_to_binary` — the
  # fastest, ~750 ns a 10-column row on this VM: the lookups are most of it). The NIF routes ~0.5 ms of changes per call and says
  # where to go on (`{index, offset}`), as `route_many`'s slices hand back the rest of a list;
  # each call's results come in order (a one-call transaction's are the answer as they are).

  alias LsmIndex.Native

  # a cell's length word: its text is below 4 GiB - 1 (the last word is NULL)
  @max_text 4_294_967_294

  @doc false
  def pack(names, changes) when is_list(changes) do
    width = length(names)
    count = count!(changes)
    pack(changes, names, 0, <<width::32-little, count::32-little>>)
  end

  def pack(_names, changes),
    do: raise(ArgumentError, "changes must be a list, got: #{inspect(changes, limit: 10)}")

  defp count!(changes) do
    length(changes)
  rescue
    # an improper list
    ArgumentError ->
      raise ArgumentError, "changes must be a proper list, got: #{inspect(changes, limit: 10)}"
  end

  defp pack([{:insert, rec} | rest], names, i, acc) when is_map(rec),
    do: pack(rest, names, i + 1, row(names, rec, i, <<acc::binary, ?I>>))

  defp pack([{:delete, rec} | rest], names, i, acc) when is_map(rec),
    do: pack(rest, names, i + 1, row(names, rec, i, <<acc::binary, ?D>>))

  defp pack([{:update, old, new} | rest], names, i, acc) when is_map(old) and is_map(new) do
    acc = row(names, new, i, row(names, old, i, <<acc::binary, ?U>>))
    pack(rest, names, i + 1, acc)
  end

  defp pack([:truncate | rest], names, i, acc),
    do: pack(rest, names, i + 1, <<acc::binary, ?T>>)

  defp pack([], _names, _i, acc), do: acc

  defp pack([change | _], _names, i, _acc) do
    raise ArgumentError,
          "the change at index #{i} is malformed: a change is {:insert, record}, " <>
            "{:delete, old_record}, {:update, old_record, record} or :truncate, got: " <>
            inspect(change, limit: 10)
  end

  defp row(names, rec, i, acc) do
    values = values(names, rec)
    texts(values, lens(values, names, i, acc))
  end

  # the record's value of each column (a missing one is nil)
  defp values([name | names], rec), do: [Map.get(rec, name) | values(names, rec)]
  defp values([], _rec), do: []

  defp lens([text | values], [_ | names], i, acc)
       when is_binary(text) and byte_size(text) <= @max_text,
       do: lens(values, names, i, <<acc::binary, byte_size(text)::32-little>>)

  defp lens([nil | values], [_ | names], i, acc),
    do: lens(values, names, i, <<acc::binary, -1::32>>)

  defp lens([], [], _i, acc), do: acc

  defp lens([other | _], [name | _], i, _acc) do
    raise ArgumentError,
          "the change at index #{i} is malformed: record values are Postgres text " <>
            "(binaries below 4 GiB) or nil, got #{inspect(other, limit: 10)} for " <>
            inspect(name)
  end

  defp texts([text | values], acc) when is_binary(text),
    do: texts(values, <<acc::binary, text::binary>>)

  defp texts([nil | values], acc), do: texts(values, acc)
  defp texts([], acc), do: acc

  @doc false
  def route(ref, packed) when is_binary(packed), do: route(ref, packed, nil, [])

  def route(_ref, packed),
    do:
      raise(
        ArgumentError,
        "expected a binary from ShapeRouter.pack_changes/2, got: #{inspect(packed, limit: 10)}"
      )

  defp route(ref, packed, position, acc) do
    reply =
      case Native.router_route_many_packed(ref, packed, position) do
        :dirty -> Native.router_route_many_packed_dirty(ref, packed, position)
        reply -> reply
      end

    case reply do
      # one call: its results are the answer, in order
      {results, :done} when is_list(results) and acc == [] ->
        results

      {results, :done} when is_list(results) ->
        :lists.append(:lists.reverse([results | acc]))

      {results, {_index, _offset} = next} when is_list(results) ->
        route(ref, packed, next, [results | acc])

      other ->
        failed!(other)
    end
  end

  defp failed!({:bad_packed, index, offset, reason}),
    do:
      raise(
        ArgumentError,
        "malformed packed changes (see ShapeRouter.pack_changes/2): #{reason} at byte " <>
          "#{offset} (change #{index})"
      )

  defp failed!({:bad_width, packed, narrowest, table}),
    do:
      raise(
        ArgumentError,
        "packed changes of #{packed} columns, but the router's table has #{table}" <>
          if(narrowest < table, do: " (#{narrowest} before columns were added)", else: "") <>
          " (pack them with ShapeRouter.pack_changes/2 of this router)"
      )

  defp failed!({:error, {:closed, _}}), do: raise(ArgumentError, "the router was closed")

  defp failed!({:error, {kind, message}}),
    do: raise(LsmIndex.Error, reason: kind, message: message)
end
