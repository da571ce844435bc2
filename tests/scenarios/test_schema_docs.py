"""The scenario-field reference is generated from the schema: every field must be described."""

from scenarios import schema


def test_every_field_and_self_validated_section_has_a_description():
    missing = [f"{s}.{k}" for s, fields in schema.SECTIONS.items() if fields
               for k in fields if f"{s}.{k}" not in schema.DESCRIPTIONS]
    missing += [s for s, fields in schema.SECTIONS.items()
                if fields is None and s not in schema.DESCRIPTIONS]
    assert not missing, f"add descriptions to scenarios.schema.DESCRIPTIONS: {missing}"


def test_expected_reads_the_checks_own_message():
    assert schema.expected(schema.number(1, 4, integer=True)) == "an integer in [1, 4]"
    assert schema.expected(schema.text("a", "b")) == "one of ('a', 'b')"
    assert schema.expected(schema.SECTIONS["env"]["dt"]) == "a finite number in (0, 10.0] s"
