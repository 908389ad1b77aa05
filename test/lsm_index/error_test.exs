defmodule LsmIndex.ErrorTest do
  use ExUnit.Case, async: true

  alias LsmIndex.Error

  doctest LsmIndex.Error

  describe "exception/1" do
    test "a {kind, text} reason is split into reason and message" do
      e = Error.exception(reason: {:corrupt, "segment 3: bad magic"})
      assert %Error{reason: :corrupt, message: "segment 3: bad magic"} = e
    end

    test "other reasons are kept whole, with a readable message" do
      assert %Error{reason: :locked, message: locked} = Error.exception(reason: :locked)
      assert locked =~ "locked"

      assert %Error{reason: :overloaded, message: overloaded} =
               Error.exception(reason: :overloaded)

      assert overloaded =~ "overload: :error"

      assert %Error{reason: {:invalid_where, 3, "expected a value"}, message: where} =
               Error.exception(reason: {:invalid_where, 3, "expected a value"})

      assert where == "invalid WHERE clause at byte 3: expected a value"
      assert Error.exception(reason: {:odd, 1, 2}).message =~ "{:odd, 1, 2}"
    end

    test "an explicit message is kept" do
      e = Error.exception(reason: :too_large, message: "more than 2^31 interned shapes")
      assert %Error{reason: :too_large, message: "more than 2^31 interned shapes"} = e
    end

    test "raise/2 builds it from the reason" do
      assert_raise Error, ~r/locked/, fn -> raise Error, reason: :locked end
    end
  end
end
