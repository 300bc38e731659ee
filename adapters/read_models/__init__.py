"""The status read models in SQL: schema and generations, the writer, the queries."""
