// A SQL shell over a local Spark + Delta session, for the integration tests (test/support/spark.ts).
//
// Launched as a single-file source program, no compile step (Java 17+):
//   java -Xmx1g --add-opens=... -cp '<jars>/*' test/support/spark/SparkSql.java <scratch dir>
// The scratch dir receives spark.local.dir, the warehouse and derby home; the caller deletes it.
// Extra Spark settings (e.g. spark.hadoop.fs.s3a.* for s3a:// tables) come as a JSON object of strings in
// the environment variable SPARK_SQL_CONF, not on the command line, where `ps` would show credentials.
//
// Protocol, one JSON object per line on stdout and nothing else there (logs go to stderr):
//   {"ready":true,"spark":"4.0.1"}                       once the session is up
//   then for each line read on stdin (one SQL statement; blank lines ignored):
//   {"ok":true,"columns":[...],"types":[...],"rows":[[...]]}   types as DataType.simpleString()
//   {"ok":false,"error":"..."}
// Values: numbers, strings, booleans, null; decimals as plain strings; timestamps as ISO-8601 UTC
// (java.time.Instant.toString); dates as YYYY-MM-DD; arrays, maps (objects) and structs (objects).
// End of stdin stops the session and exits 0.

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

public class SparkSql {
  // Spark's console logging defaults to INFO; WARN and above, all to stderr.
  private static final String LOG4J2 = String.join("\n",
      "rootLogger.level = warn",
      "rootLogger.appenderRef.stderr.ref = stderr",
      "appender.console.type = Console",
      "appender.console.name = stderr",
      "appender.console.target = SYSTEM_ERR",
      "appender.console.layout.type = PatternLayout",
      "appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex",
      // Noisy at WARN on every start in local mode, and harmless.
      "logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader",
      "logger.nativecode.level = error",
      // S3A's metrics system looks for a config file we do not need, on every first s3a:// access.
      "logger.s3ametrics.name = org.apache.hadoop.metrics2.impl.MetricsConfig",
      "logger.s3ametrics.level = error",
      "");

  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: SparkSql.java <scratch dir>");
      System.exit(2);
    }
    // The protocol owns the real stdout; anything else printing to System.out lands on stderr.
    PrintStream protocol = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    System.setOut(System.err);

    Path scratch = Path.of(args[0]).toAbsolutePath();
    Files.createDirectories(scratch);
    Path log4j = scratch.resolve("log4j2.properties");
    Files.writeString(log4j, LOG4J2);
    // Before anything touches log4j: Spark keeps a configuration it did not install itself.
    System.setProperty("log4j2.configurationFile", log4j.toUri().toString());
    System.setProperty("derby.system.home", scratch.resolve("derby").toString());

    SparkSession.Builder builder = SparkSession.builder();
    String extra = System.getenv("SPARK_SQL_CONF");
    if (extra != null && !extra.isBlank()) {
      for (Map.Entry<String, String> e : JSON.readValue(extra, new TypeReference<Map<String, String>>() {}).entrySet()) {
        builder.config(e.getKey(), e.getValue());
      }
    }
    SparkSession spark = builder
        .appName("food-orders-pipeline-tests")
        .master("local[2]")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        // Delta replays the log into 50 partitions by default: seconds of task overhead per new snapshot.
        .config("spark.databricks.delta.snapshotPartitions", "2")
        // Instant and LocalDate instead of java.sql.Timestamp/Date: no JVM-time-zone arithmetic on the way out.
        .config("spark.sql.datetime.java8API.enabled", "true")
        .config("spark.local.dir", scratch.resolve("local").toString())
        .config("spark.sql.warehouse.dir", scratch.resolve("warehouse").toUri().toString())
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate();
    protocol.println(JSON.writeValueAsString(Map.of("ready", true, "spark", spark.version())));

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) continue;
      String answer;
      try {
        answer = JSON.writeValueAsString(run(spark, line));
      } catch (Throwable error) {
        Map<String, Object> failure = new LinkedHashMap<>();
        failure.put("ok", false);
        failure.put("error", describe(error));
        answer = JSON.writeValueAsString(failure);
      }
      protocol.println(answer);
    }
    spark.stop();
    System.exit(0);
  }

  private static Map<String, Object> run(SparkSession spark, String statement) {
    Dataset<Row> frame = spark.sql(statement);
    StructType schema = frame.schema();
    List<String> columns = new ArrayList<>();
    List<String> types = new ArrayList<>();
    for (StructField field : schema.fields()) {
      columns.add(field.name());
      types.add(field.dataType().simpleString());
    }
    List<Object> rows = new ArrayList<>();
    for (Row row : frame.collectAsList()) rows.add(rowValues(row));
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("ok", true);
    result.put("columns", columns);
    result.put("types", types);
    result.put("rows", rows);
    return result;
  }

  private static List<Object> rowValues(Row row) {
    List<Object> values = new ArrayList<>(row.length());
    for (int i = 0; i < row.length(); i++) values.add(value(row.get(i)));
    return values;
  }

  private static Object value(Object v) {
    if (v == null || v instanceof String || v instanceof Boolean) return v;
    if (v instanceof BigDecimal d) return d.toPlainString();
    if (v instanceof Double d) return d.isNaN() || d.isInfinite() ? d.toString() : d;
    if (v instanceof Float f) return f.isNaN() || f.isInfinite() ? f.toString() : f;
    if (v instanceof Number) return v;
    if (v instanceof java.time.Instant t) return t.toString();
    if (v instanceof java.time.LocalDate d) return d.toString();
    if (v instanceof java.time.LocalDateTime t) return t.toString();
    if (v instanceof java.sql.Timestamp t) return t.toInstant().toString();
    if (v instanceof java.sql.Date d) return d.toLocalDate().toString();
    if (v instanceof byte[] b) return Base64.getEncoder().encodeToString(b);
    if (v instanceof Row r) {
      Map<String, Object> struct = new LinkedHashMap<>();
      String[] names = r.schema() == null ? null : r.schema().fieldNames();
      for (int i = 0; i < r.length(); i++) struct.put(names == null ? "_" + (i + 1) : names[i], value(r.get(i)));
      return struct;
    }
    if (v instanceof scala.collection.Map<?, ?> m) {
      Map<String, Object> map = new LinkedHashMap<>();
      for (Map.Entry<?, ?> e : scala.jdk.javaapi.CollectionConverters.asJava(m).entrySet()) {
        map.put(String.valueOf(value(e.getKey())), value(e.getValue()));
      }
      return map;
    }
    if (v instanceof scala.collection.Iterable<?> s) {
      List<Object> list = new ArrayList<>();
      for (Object item : scala.jdk.javaapi.CollectionConverters.asJava(s)) list.add(value(item));
      return list;
    }
    return v.toString();
  }

  /** The exception's class and message, and the root cause's when it differs. */
  private static String describe(Throwable error) {
    Throwable root = error;
    while (root.getCause() != null && root.getCause() != root) root = root.getCause();
    String message = error.getClass().getName() + ": " + error.getMessage();
    return root == error ? message : message + "\ncaused by " + root.getClass().getName() + ": " + root.getMessage();
  }
}
