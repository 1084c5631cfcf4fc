#!/bin/bash
# apache/kafka's kafka-console-consumer.sh: org.apache.kafka.tools.consumer.ConsoleConsumer from the tools jar.
exec java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties -cp '/opt/kafka/libs/*' org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
