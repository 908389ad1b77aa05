defmodule LsmIndex.Packed do
  @moduledoc false
  # `LsmIndex.pack_keys/1`: keys as the packed binary `index_lookup_many_packed` reads in
  # place (layout and checks: `lsm_index_core::packed`):
  #
  #     count::32-little, then per key  len::32-little, key::binary-size(len)
  #       key = <<1, i::64-big>>           an integer in the i64 range
  #             <<2, bytes::binary>>       a binary
  #             <<3, external::binary>>    any other term, term_to_binary(t, [:deterministic])
  #
  # the bytes the NIF's `key_bytes` makes of `LsmIndex`'s single-key encoding (`key/1`
  # there), so packed and listed keys find the same sets.
  #
  # One pass, appending to one binary (the runtime grows it in place). The i64 range is
  # tested with shifts: comparing a small integer with the bignum bounds cost ~10 ns a key.
  import Bitwise

  # a key's length word counts its tag byte too
  @max_binary 4_294_967_294

  @doc false
  def keys(keys) when is_list(keys), do: pack(keys, <<count!(keys)::32-little>>)

  defp count!(keys) do
    length(keys)
  rescue
    # an improper list
    ArgumentError -> improper!(keys)
  end

  defp pack([k | rest], acc) when is_integer(k) and (k >>> 63 === 0 or k >>> 63 === -1),
    do: pack(rest, <<acc::binary, 9::32-little, 1, k::64-big>>)

  defp pack([k | rest], acc) when is_binary(k) and byte_size(k) <= @max_binary,
    do: pack(rest, <<acc::binary, byte_size(k) + 1::32-little, 2, k::binary>>)

  defp pack([k | _rest], _acc) when is_binary(k), do: too_large!()

  defp pack([k | rest], acc) do
    external = :erlang.term_to_binary(k, [:deterministic])
    if byte_size(external) > @max_binary, do: too_large!()
    pack(rest, <<acc::binary, byte_size(external) + 1::32-little, 3, external::binary>>)
  end

  defp pack([], acc), do: acc

  defp improper!(keys),
    do: raise(ArgumentError, "expected a proper list of keys, got: #{inspect(keys, limit: 5)}")

  defp too_large!,
    do: raise(ArgumentError, "a packed key is at most 4 GiB - 2 bytes (its length is 32-bit)")
end
