module smokescreen/clientrecipe

go 1.19
