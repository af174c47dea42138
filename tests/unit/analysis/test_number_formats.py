"""Numbers written for people in delimited text: decimal commas and thousands separators, read only when a
column is consistent and says which format it is (issue 10)."""

import pytest

NBSP, NNBSP = "\u00a0", "\u202f"


def _column(result, rows, name):
    dtype = next(column["dtype"] for column in result.tables[0].columns if column["name"] == name)
    return dtype, [row[name] for row in rows(result)]


@pytest.mark.parametrize(("delimiter", "values", "written"), [
    (";", ["1.200,50", "950,00", "-12.345.678,9"], "1.234,56"),
    (",", ['"1.200,50"', '"950,00"', '"-12.345.678,9"'], "1.234,56"),
    (";", [f"1{NBSP}200,50", "950,00", f"-12{NNBSP}345{NNBSP}678,9"], "1 234,56"),
    (";", ["1 200,50", "950,00", "-12 345 678,9"], "1 234,56"),
    (";", ["1'200,50", "950,00", "-12'345'678,9"], "1'234,56"),
    (";", ["1,200.50", "950.00", "-12,345,678.9"], "1,234.56"),
    (",", ['"1,200.50"', "950.00", '"-12,345,678.9"'], "1,234.56"),
    ("\t", ["1 200.50", "950.00", "-12 345 678.9"], "1 234.56"),
    ("|", ["1'200.50", "950", "-12'345'678.9"], "1'234.56"),
])
def test_a_consistent_column_of_grouped_numbers_is_read_as_numbers(upload, rows, delimiter, values, written):
    text = f"item{delimiter}price\n" + "".join(f"x{delimiter}{value}\n" for value in values)

    result = upload("prices.csv", text)

    assert _column(result, rows, "price") == ("Float64", [1200.5, 950.0, -12345678.9])
    assert result.warnings == [f"numbers written like {written} read as 1234.56 in column(s) 'price'"]


def test_each_column_is_read_in_its_own_format_and_the_warning_names_them(upload, rows):
    text = ("a;b;c;d;e\n"
            f"1.200,50;1,5;1{NBSP}200;1,200.50;7\n"
            f"3,25;2;2{NBSP}500{NBSP}000;3.5;8\n")

    result = upload("mixed.csv", text)

    assert _column(result, rows, "a") == ("Float64", [1200.5, 3.25])
    assert _column(result, rows, "b") == ("Float64", [1.5, 2.0])
    assert _column(result, rows, "c") == ("Int64", [1200, 2500000])
    assert _column(result, rows, "d") == ("Float64", [1200.5, 3.5])
    assert result.warnings == ["numbers written like 1.234,56 read as 1234.56 in column(s) 'a'",
                               "numbers written like 1234,56 read as 1234.56 in column(s) 'b'",
                               "numbers written like 1 234 read as 1234 in column(s) 'c'",
                               "numbers written like 1,234.56 read as 1234.56 in column(s) 'd'"]


def test_a_dot_grouped_value_beside_a_decimal_comma_is_a_thousands_separator(upload, rows):
    result = upload("s.csv", "price;note\n1.200;x\n5,50;y\n")

    assert _column(result, rows, "price") == ("Float64", [1200.0, 5.5])


def test_a_column_of_dot_grouped_values_alone_keeps_reading_them_as_decimals(upload, rows):
    # 1.200 alone is 1.2 as much as 1200: keep what was read before (a decimal point).
    result = upload("s.csv", "price;note\n1.200;x\n2.500;y\n")

    assert _column(result, rows, "price") == ("Float64", [1.2, 2.5])
    assert result.warnings == []


def test_a_column_mixing_the_two_conventions_stays_text_and_says_why(upload, rows):
    result = upload("s.csv", "price;note\n1.200,50;x\n1,200.50;y\n")

    assert _column(result, rows, "price") == ("String", ["1.200,50", "1,200.50"])
    assert result.warnings == ["column 'price' kept as text: 1 of 2 values are not numbers written like 1.234,56"]


def test_a_column_that_reads_two_ways_stays_text(upload, rows):
    # 1,200 and 1.200: either 1.2 and 1200, or 1200 and 1.2; nothing says which.
    result = upload("s.csv", "price;note\n1,200;x\n1.200;y\n")

    assert _column(result, rows, "price") == ("String", ["1,200", "1.200"])
    assert result.warnings == ["column 'price' kept as text: its numbers read two ways (1.234,56 or 1,234.56)"]


def test_a_bare_decimal_comma_is_not_read_where_commas_delimit_the_fields(upload, rows):
    result = upload("s.csv", 'price,ids\n"1,5","1,5"\n"2,25","3,2"\n')

    assert _column(result, rows, "price") == ("String", ["1,5", "2,25"])
    assert _column(result, rows, "ids") == ("String", ["1,5", "3,2"])
    assert result.warnings == []


def test_comma_grouped_integers_are_numbers_where_commas_delimit_the_fields(upload, rows):
    result = upload("s.csv", 'units,n\n"1,200",1\n"12,500,000",2\n')

    assert _column(result, rows, "units") == ("Int64", [1200, 12500000])
    assert result.warnings == ["numbers written like 1,234 read as 1234 in column(s) 'units'"]


@pytest.mark.parametrize("values", [
    ["1.2.3", "1.200.300"],  # versions
    ["01.02.2024x", "1.200"],  # a date with a tail
    ["012 345", "1 200"],  # a leading zero is an identifier's, not a number's
    ["192.168.001.001", "10.000.000,5x"],
    ["+49 30 1234", "1 200"],  # a phone number: groups of other sizes
    ["1,2,3", "4,5"],
    ["12,3456.7", "1"],
])
def test_things_that_only_look_like_numbers_stay_text(upload, rows, values):
    result = upload("s.csv", "v;k\n" + "".join(f"{value};1\n" for value in values))

    assert _column(result, rows, "v") == ("String", values)
    assert not any("numbers written like" in warning and "read as" in warning for warning in result.warnings)


def test_a_value_far_down_the_file_that_breaks_the_format_keeps_the_column_text(upload, rows):
    text = "price;n\n" + "".join(f"{i % 999 + 1}.000,50;{i}\n" for i in range(30_000)) + "n/a;0\n"

    result = upload("long.csv", text)

    dtype, values = _column(result, rows, "price")
    assert dtype == "String" and values[-1] == "n/a"
    assert result.warnings == ["column 'price' kept as text: 1 of 30,001 values are not numbers written like 1.234,56"]


def test_proof_far_down_the_file_is_seen(upload, rows):
    # 1.200 for 20,000 rows (a decimal point to polars), then one decimal comma: the column is dot-grouped.
    text = "price;n\n" + "1.200;1\n" * 20_000 + "5,50;2\n"

    result = upload("late.csv", text)

    dtype, values = _column(result, rows, "price")
    assert dtype == "Float64" and values[0] == 1200.0 and values[-1] == 5.5
    assert "numbers written like 1.234,56 read as 1234.56 in column(s) 'price'" in result.warnings


def test_blank_cells_are_nulls_and_huge_integers_stay_exact_as_floats_only_when_they_must(upload, rows):
    text = f"a;b\n1 200;1{NBSP}234{NBSP}567{NBSP}890{NBSP}123{NBSP}456{NBSP}789\n;2 000\n\"\";3 000\n"

    result = upload("s.csv", text)

    assert _column(result, rows, "a") == ("Int64", [1200, None, None])
    assert _column(result, rows, "b") == ("Float64", [1234567890123456789.0, 2000.0, 3000.0])


def test_free_text_with_one_number_in_it_stays_text_without_a_warning(upload, rows):
    text = "comment;k\n" + "".join(f"note {i};1\n" for i in range(20)) + "1.234,56;1\n"

    result = upload("notes.csv", text)

    assert _column(result, rows, "comment")[0] == "String"
    assert result.warnings == []
