i=0
while [ $i -lt 5 ]; do echo "line $i"; i=$((i+1)); done
