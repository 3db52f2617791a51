// Publishes a batch through the publish API, then asks who is online; java.net.http only
// (JDK 11+). Run: SSE_URL=... SSE_API_KEY=... java Publish.java
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public class Publish {
  public static void main(String[] args) throws Exception {
    String base = System.getenv("SSE_URL");
    String key = System.getenv("SSE_API_KEY");
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    String batch = """
        {"messages": [
          {"target": "user", "keys": ["7"], "event": "invoice-paid", "data": {"invoice": 1042}},
          {"target": "user", "keys": ["8"], "event": "invoice-paid", "data": {"invoice": 1043}}
        ]}""";
    HttpRequest publish = HttpRequest.newBuilder(URI.create(base + "/publish/batch"))
        .timeout(Duration.ofSeconds(10))
        .header("Authorization", "Bearer " + key)
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(batch))
        .build();
    HttpResponse<String> sent = client.send(publish, HttpResponse.BodyHandlers.ofString());
    if (sent.statusCode() != 200) {
      System.err.println(sent.statusCode() + " " + sent.body());
      System.exit(1);
    }
    System.out.println(sent.body());

    HttpRequest online = HttpRequest.newBuilder(URI.create(base + "/publish/online?userId=7&userId=8"))
        .header("Authorization", "Bearer " + key)
        .build();
    HttpResponse<String> who = client.send(online, HttpResponse.BodyHandlers.ofString());
    if (who.statusCode() != 200) {
      System.err.println(who.statusCode() + " " + who.body());
      System.exit(1);
    }
    System.out.println(who.body());
  }
}
