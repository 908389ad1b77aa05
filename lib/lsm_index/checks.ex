defmodule LsmIndex.Checks do
  @moduledoc false
  # `LsmIndex`'s input checks, apart from the API: the index checked around each NIF call (a
  # closed index or something else raise) and the arguments checked and encoded as the NIFs
  # take them (keys, handles, pairs, event kinds). Caller mistakes raise ArgumentError with a
  # clear message.

  import Bitwise, only: [>>>: 2]

  alias LsmIndex.Native

  @max_handle 4_294_967_295

  @doc "`fun.(index)`, its reply with a closed index or a non-index raised."
  # Arguments are checked before `fun` runs: what the NIF can still refuse is the index.
  def call(index, fun), do: closed!(index, nif(index, fun))

  defp nif(index, fun) when is_reference(index) do
    fun.(index)
  rescue
    ArgumentError -> reraise ArgumentError, [message: not_an_index(index)], __STACKTRACE__
  end

  defp nif(index, _fun), do: raise(ArgumentError, not_an_index(index))

  @doc "`reply`, raising when it says the index was closed."
  # Using a closed index is a caller mistake.
  def closed!(index, {:error, {:closed, _}}),
    do: raise(ArgumentError, "the index was closed: #{inspect(index)}")

  def closed!(_index, reply), do: reply

  defp not_an_index(index), do: "expected an index from LsmIndex.new/1, got: #{inspect(index)}"

  @doc "`Native.index_lookup/2` (`LsmIndex.lookup/2`'s hot path: no closure), index checked."
  def index_lookup(index, k) when is_reference(index) do
    Native.index_lookup(index, k)
  rescue
    ArgumentError -> reraise ArgumentError, [message: not_an_index(index)], __STACKTRACE__
  end

  def index_lookup(index, _k), do: raise(ArgumentError, not_an_index(index))

  @doc "`fun.(index, packed)` (`LsmIndex.lookup_many_packed/2`), index and binary checked."
  def packed_nif(index, fun, packed) when is_reference(index) do
    fun.(index, packed)
  catch
    :error, {:badarg, {:packed_keys, offset, reason}} ->
      reraise ArgumentError,
              [
                message:
                  "malformed packed keys (see LsmIndex.pack_keys/1): #{reason} at byte #{offset}"
              ],
              __STACKTRACE__

    :error, :badarg ->
      reraise ArgumentError, [message: not_an_index(index)], __STACKTRACE__
  end

  def packed_nif(index, _fun, _packed), do: raise(ArgumentError, not_an_index(index))

  @doc "A handle, checked."
  def handle!(h) when is_integer(h) and h >= 0 and h <= @max_handle, do: h

  def handle!(h),
    do:
      raise(ArgumentError, "a handle must be an integer in 0..#{@max_handle}, got: #{inspect(h)}")

  # Integer and binary keys go to the NIF as they are: a list of only such pairs (the common
  # case) is checked without being rebuilt. The 64-bit range is tested with a shift:
  # comparing with the bignum bounds took ~10 ns a key (a third of a 256-key batch's
  # Elixir time, `mix run` micro-bench of issue 25).
  defguardp plain_key(k)
            when (is_integer(k) and (k >>> 63 === 0 or k >>> 63 === -1)) or is_binary(k)

  @doc "A key as the NIFs take it."
  def key(k) when plain_key(k), do: k
  def key(k), do: {:__lsm_term__, :erlang.term_to_binary(k, [:deterministic])}

  @doc "A list of `{key, handle}` pairs as the NIFs take it, checked."
  def pairs!(pairs) when is_list(pairs) do
    if plain_pairs?(pairs) do
      pairs
    else
      Enum.map(pairs, fn
        {k, h} -> {key(k), handle!(h)}
        other -> raise ArgumentError, "expected a {key, handle} pair, got: #{inspect(other)}"
      end)
    end
  end

  def pairs!(other),
    do: raise(ArgumentError, "expected a list of {key, handle} pairs, got: #{inspect(other)}")

  defp plain_pairs?([{k, h} | rest])
       when plain_key(k) and is_integer(h) and h >= 0 and h <= @max_handle,
       do: plain_pairs?(rest)

  defp plain_pairs?([]), do: true
  defp plain_pairs?(_), do: false

  @doc "Whether every key of the list goes to the NIF as it is."
  def plain_keys?([k | rest]) when plain_key(k), do: plain_keys?(rest)
  def plain_keys?([]), do: true
  def plain_keys?(_), do: false

  # The NIF's bits of each event kind (index_events.rs: DONE, STARTED, FAILED).
  @event_bits %{done: 1, started: 2, failed: 4}

  @doc "The NIF's mask of `subscribe/3`'s `:events`, checked."
  def events!(events) when is_list(events) and events != [] do
    Enum.reduce(events, 0, fn event, mask ->
      case @event_bits do
        %{^event => bit} -> Bitwise.bor(mask, bit)
        _ -> raise ArgumentError, ":events are :started, :done or :failed, got: #{inspect(event)}"
      end
    end)
  end

  def events!(other),
    do: raise(ArgumentError, ":events must be a non-empty list, got: #{inspect(other)}")
end
